#include "cli/json.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace kfleet::cli {

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message, JsonStyle style) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = style == JsonStyle::kPretty;
  options.always_print_primitive_fields = false;
  options.preserve_proto_field_names = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("cannot print ", message.GetTypeName(),
                                            " as JSON: ", std::string(status.message())));
  }
  // add_whitespace already ends the document with a newline.
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

absl::StatusOr<std::string> ToJsonWith(
    const google::protobuf::Message& message,
    const std::vector<std::pair<std::string, std::string>>& extra) {
  absl::StatusOr<std::string> text = ToJson(message, JsonStyle::kLine);
  if (!text.ok()) return text.status();
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return absl::InternalError(absl::StrCat("cannot print ", message.GetTypeName(), " as JSON"));
  }
  for (const auto& [key, value] : extra) doc[key] = value;
  return absl::StrCat(doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace), "\n");
}

}  // namespace kfleet::cli

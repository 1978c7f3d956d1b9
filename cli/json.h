// Protobuf messages as kctl's JSON output: proto field names, default values left out, enums by
// name, bytes in base64.
#ifndef KFLEET_CLI_JSON_H_
#define KFLEET_CLI_JSON_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace kfleet::cli {

enum class JsonStyle {
  kLine,    // one line: for streams, one document per line
  kPretty,  // indented: for a single document
};

// The JSON text of `message` followed by a newline.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message, JsonStyle style);

// As ToJson with kPretty, with `extra` string fields added to the top-level object (a field of
// the message with the same name is replaced).
absl::StatusOr<std::string> ToJsonWith(
    const google::protobuf::Message& message,
    const std::vector<std::pair<std::string, std::string>>& extra);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_JSON_H_

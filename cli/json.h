// Protobuf messages as kctl's JSON output: proto field names, default values left out, enums by
// name, bytes in base64.
#ifndef KFLEET_CLI_JSON_H_
#define KFLEET_CLI_JSON_H_

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace kfleet::cli {

enum class JsonStyle {
  kLine,    // one line: for streams, one document per line
  kPretty,  // indented: for a single document
};

// The JSON text of `message` followed by a newline.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message, JsonStyle style);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_JSON_H_

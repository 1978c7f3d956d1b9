// Timestamped one-line logs on stderr: "2026-11-25T10:00:00.123Z I controller: message".
#ifndef KFLEET_COMMON_LOG_H_
#define KFLEET_COMMON_LOG_H_

#include "absl/strings/string_view.h"

namespace kfleet {

void LogInfo(absl::string_view message);
void LogWarning(absl::string_view message);
void LogError(absl::string_view message);

}  // namespace kfleet

#endif  // KFLEET_COMMON_LOG_H_

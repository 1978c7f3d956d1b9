// Durations as people write them on the command line and in job specs: "500ms", "30s", "5m", "2h",
// "1h30m".
#ifndef KFLEET_COMMON_DURATION_H_
#define KFLEET_COMMON_DURATION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kfleet {

// Parses a positive duration. The error names the text and the accepted forms.
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text);

// Whether `text` is a zero duration in any unit ("0", "0s", "0ms"): what flags whose help says
// "0: never" (or off) accept besides ParseDuration's positive durations.
bool IsZeroDuration(absl::string_view text);

// "1m30s", "250ms", "2h": the short form people read.
std::string ShortDuration(absl::Duration d);

}  // namespace kfleet

#endif  // KFLEET_COMMON_DURATION_H_

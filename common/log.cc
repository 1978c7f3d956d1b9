#include "common/log.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kfleet {
namespace {

void Emit(char level, absl::string_view message) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
                   std::string(1, level), " ", message, "\n");
  // One write per line, so concurrent lines do not interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

void LogInfo(absl::string_view message) { Emit('I', message); }
void LogWarning(absl::string_view message) { Emit('W', message); }
void LogError(absl::string_view message) { Emit('E', message); }

}  // namespace kfleet

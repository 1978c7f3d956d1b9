#include "common/duration.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kfleet {

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text) {
  absl::Duration d;
  if (text.empty() || text.size() > 32 || !absl::ParseDuration(text, &d) ||
      d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid duration \"", text.substr(0, 32),
                                                   "\": write a positive number with a unit, e.g. "
                                                   "500ms, 30s, 5m, 2h or 1h30m"));
  }
  return d;
}

bool IsZeroDuration(absl::string_view text) {
  absl::Duration d;
  return text == "0" ||
         (text.size() <= 32 && absl::ParseDuration(text, &d) && d == absl::ZeroDuration());
}

std::string ShortDuration(absl::Duration d) {
  if (d < absl::Seconds(1)) return absl::StrCat(absl::ToInt64Milliseconds(d), "ms");
  int64_t s = absl::ToInt64Seconds(d);
  std::string out;
  if (s >= 3600) absl::StrAppend(&out, s / 3600, "h");
  if (s % 3600 >= 60) absl::StrAppend(&out, (s % 3600) / 60, "m");
  if (s % 60 != 0 || out.empty()) {
    if (s < 60) {
      double secs = absl::ToDoubleSeconds(d);
      return secs < 10 ? absl::StrFormat("%.1fs", secs) : absl::StrCat(s, "s");
    }
    absl::StrAppend(&out, s % 60, "s");
  }
  return out;
}

}  // namespace kfleet

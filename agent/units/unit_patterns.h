// The agent's --watch-units: comma-separated shell globs of systemd unit names, e.g.
// 'mbsync@*.service,offlineimap*.service'.
#ifndef KFLEET_AGENT_UNITS_UNIT_PATTERNS_H_
#define KFLEET_AGENT_UNITS_UNIT_PATTERNS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet::agent {

inline constexpr size_t kMaxUnitPatterns = 32;
inline constexpr size_t kMaxUnitPatternBytes = 256;
// Units watched at most: the bound of the `unit` label of the kfleet_unit_* metrics. Units that
// match past it are left out, with a warning.
inline constexpr size_t kMaxWatchedUnits = 64;

// Parses the flag's value. Each pattern is a unit name (systemd's characters: letters, digits,
// ":-_.\@") with the glob characters "*?[]" allowed, and ends in ".service" (or in "*", which then
// matches services only): the agent follows runs of services. Empty parts are refused, as are
// more than kMaxUnitPatterns patterns or one longer than kMaxUnitPatternBytes. The error names
// the pattern and the fix.
absl::StatusOr<std::vector<std::string>> ParseUnitPatterns(absl::string_view text);

// Whether `unit` is a service that one of `patterns` matches (fnmatch, no special meaning for
// "/" or a leading ".").
bool UnitMatches(const std::vector<std::string>& patterns, absl::string_view unit);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_UNITS_UNIT_PATTERNS_H_

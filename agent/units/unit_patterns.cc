#include "agent/units/unit_patterns.h"

#include <fnmatch.h>

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kfleet::agent {
namespace {

bool UnitNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '-' || c == '_' ||
         c == '.' || c == '\\' || c == '@';
}

bool GlobChar(char c) { return c == '*' || c == '?' || c == '[' || c == ']'; }

absl::Status Refuse(absl::string_view pattern, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--watch-units: \"", pattern, "\" ", why,
                   " (give comma-separated globs of service names, e.g. "
                   "'mbsync@*.service,offlineimap*.service')"));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseUnitPatterns(absl::string_view text) {
  std::vector<std::string> patterns;
  if (text.size() > kMaxUnitPatterns * (kMaxUnitPatternBytes + 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--watch-units: ", text.size(), " bytes is too long (at most ",
                     kMaxUnitPatterns, " patterns of ", kMaxUnitPatternBytes, " bytes)"));
  }
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) return Refuse(text, "has an empty pattern");
    if (part.size() > kMaxUnitPatternBytes) {
      return Refuse(part.substr(0, 32),
                    absl::StrCat("... is longer than ", kMaxUnitPatternBytes, " bytes"));
    }
    for (char c : part) {
      if (!UnitNameChar(c) && !GlobChar(c)) {
        return Refuse(part, absl::StrCat("has the character '", absl::CEscape(std::string(1, c)),
                                         "', which no unit name has"));
      }
    }
    if (!absl::EndsWith(part, ".service") && !absl::EndsWith(part, "*")) {
      return Refuse(part,
                    "names no service (the agent follows the runs of services: end it in "
                    "\".service\", e.g. \"mbsync@*.service\")");
    }
    if (patterns.size() == kMaxUnitPatterns) {
      return absl::InvalidArgumentError(absl::StrCat("--watch-units: more than ", kMaxUnitPatterns,
                                                     " patterns (join them with globs)"));
    }
    patterns.emplace_back(part);
  }
  return patterns;
}

bool UnitMatches(const std::vector<std::string>& patterns, absl::string_view unit) {
  if (!absl::EndsWith(unit, ".service")) return false;
  const std::string name(unit);
  for (const std::string& p : patterns) {
    if (::fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

}  // namespace kfleet::agent

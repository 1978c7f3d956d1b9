// Fuzz target for --watch-units' parser: whatever the text, a bounded list of patterns or an
// error, and matching never misbehaves.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/units/unit_patterns.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<std::string>> patterns = kfleet::agent::ParseUnitPatterns(input);
  if (!patterns.ok()) {
    if (patterns.status().message().empty()) std::abort();
    return 0;
  }
  if (patterns->empty() || patterns->size() > kfleet::agent::kMaxUnitPatterns) std::abort();
  for (const std::string& p : *patterns) {
    if (p.empty() || p.size() > kfleet::agent::kMaxUnitPatternBytes) std::abort();
  }
  kfleet::agent::UnitMatches(*patterns, input);
  kfleet::agent::UnitMatches(*patterns, "mbsync@work.service");
  return 0;
}

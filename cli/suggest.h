// "Did you mean ...?" for mistyped commands, flags and values.
#ifndef KFLEET_CLI_SUGGEST_H_
#define KFLEET_CLI_SUGGEST_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace kfleet::cli {

// Levenshtein distance, where swapping two adjacent characters counts as one edit.
size_t EditDistance(absl::string_view a, absl::string_view b);

// The candidate closest to `word`, if it is close enough to be a likely typo (at most 2 edits, and
// fewer than half the word's length), or if `word` is a prefix of exactly one candidate.
std::optional<std::string> SuggestClosest(absl::string_view word,
                                          const std::vector<std::string>& candidates);

// ` (did you mean "X"?)` for the closest candidate, or "" when none is close.
std::string DidYouMean(absl::string_view word, const std::vector<std::string>& candidates);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_SUGGEST_H_

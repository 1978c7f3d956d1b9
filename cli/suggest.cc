#include "cli/suggest.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace kfleet::cli {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  // Optimal string alignment distance over three rows.
  std::vector<size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::optional<std::string> SuggestClosest(absl::string_view word,
                                          const std::vector<std::string>& candidates) {
  if (word.empty()) return std::nullopt;
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const std::string& c : candidates) {
    size_t d = EditDistance(word, c);
    if (!best || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  if (best && best_distance <= 2 && best_distance * 2 < std::max(word.size(), best->size())) {
    return best;
  }
  std::optional<std::string> prefixed;
  for (const std::string& c : candidates) {
    if (!absl::StartsWith(c, word)) continue;
    if (prefixed) return std::nullopt;  // ambiguous
    prefixed = c;
  }
  return prefixed;
}

std::string DidYouMean(absl::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> s = SuggestClosest(word, candidates);
  return s ? absl::StrCat(" (did you mean \"", *s, "\"?)") : "";
}

}  // namespace kfleet::cli

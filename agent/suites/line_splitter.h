// Splits output that arrives in chunks into lines, each bounded: the parsers of fstests' and
// blktests' output are fed whatever a pipe delivered.
#ifndef KFLEET_AGENT_SUITES_LINE_SPLITTER_H_
#define KFLEET_AGENT_SUITES_LINE_SPLITTER_H_

#include <algorithm>
#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace kfleet::agent {

class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line_bytes) : max_(max_line_bytes) {}

  // Calls on_line(absl::string_view) for each line `chunk` completes, without its "\n". A line
  // longer than max_line_bytes is cut to that many bytes (the rest of it is dropped).
  template <typename OnLine>
  void Feed(absl::string_view chunk, OnLine on_line) {
    while (!chunk.empty()) {
      size_t nl = chunk.find('\n');
      absl::string_view piece = chunk.substr(0, nl);
      chunk = nl == absl::string_view::npos ? absl::string_view() : chunk.substr(nl + 1);
      if (!discarding_) {
        const size_t room = max_ - std::min(partial_.size(), max_);
        partial_.append(piece.data(), std::min(piece.size(), room));
      }
      if (nl == absl::string_view::npos) {
        if (partial_.size() >= max_) discarding_ = true;
        break;
      }
      on_line(absl::string_view(partial_));
      partial_.clear();
      discarding_ = false;
    }
  }

  // Calls on_line for a last line that had no "\n", if any.
  template <typename OnLine>
  void Finish(OnLine on_line) {
    if (!partial_.empty()) on_line(absl::string_view(partial_));
    partial_.clear();
    discarding_ = false;
  }

 private:
  const size_t max_;
  std::string partial_;
  bool discarding_ = false;  // dropping the rest of an overlong line
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_LINE_SPLITTER_H_

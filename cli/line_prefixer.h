// Interleaves the output of several hosts line by line, each line prefixed by its host:
// "host-a | text". Chunks arrive cut anywhere, so partial lines wait per (command, stream) until
// their newline, or until Flush().
#ifndef KFLEET_CLI_LINE_PREFIXER_H_
#define KFLEET_CLI_LINE_PREFIXER_H_

#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace kfleet::cli {

class LinePrefixer {
 public:
  // A line longer than `max_line_bytes` without a newline is printed in pieces of that size, so
  // that output without newlines cannot take unbounded memory. `out` and `err` must outlive this.
  LinePrefixer(std::ostream& out, std::ostream& err, size_t max_line_bytes = 64 << 10);

  // Pads prefixes to the longest host name seen so far; call with every host known in advance so
  // that columns line up from the first line.
  void AddHost(absl::string_view host);

  // Adds a chunk of `command_id`'s `stream` (any number for the caller's streams), printed to `err`
  // if `to_err`, else to `out`. Complete lines are printed (and the stream flushed) at once.
  void Write(absl::string_view command_id, int stream, absl::string_view host, bool to_err,
             absl::string_view data);

  // Prints every partial line, each followed by a newline, in the order their output began.
  void Flush();

 private:
  struct Pending {
    std::string host;
    bool to_err = false;
    std::string partial;
  };

  void PrintLine(const Pending& p, absl::string_view line);

  std::ostream& out_;
  std::ostream& err_;
  size_t max_line_bytes_;
  size_t width_ = 0;
  std::map<std::pair<std::string, int>, size_t> index_;  // (command, stream) -> pending_
  std::vector<Pending> pending_;
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_LINE_PREFIXER_H_

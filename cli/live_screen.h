// Text redrawn in place on a terminal: the progress table of `kctl run` and `kctl boot`, the host
// table of `kctl top`.
#ifndef KFLEET_CLI_LIVE_SCREEN_H_
#define KFLEET_CLI_LIVE_SCREEN_H_

#include <cstddef>
#include <functional>
#include <ostream>
#include <string>

namespace kfleet::cli {

// The width of the terminal on the process's stdout; 0 when it is not a terminal or cannot be
// known. main() hands it to Io::columns.
size_t TerminalColumns();

// Not thread-safe: callers that draw from two threads hold their own lock around Draw().
class LiveScreen {
 public:
  enum class Mode {
    // Back up over the previous drawing and clear from there down: what the shell printed above
    // stays (kctl run).
    kInline,
    // Move home and clear the screen, with the cursor hidden until Close() (kctl top).
    kFullScreen,
  };

  // `columns` is asked on each Draw; 0 means no limit. `out` must outlive this.
  LiveScreen(std::ostream& out, Mode mode, std::function<size_t()> columns);
  ~LiveScreen() { Close(); }
  LiveScreen(const LiveScreen&) = delete;
  LiveScreen& operator=(const LiveScreen&) = delete;

  // Replaces what was drawn with `text` (lines ending in '\n'), each line cut to the terminal's
  // width so that none wraps (a wrapped line would throw kInline's count off), and flushes.
  void Draw(const std::string& text);

  // Full screen: shows the cursor again. The drawing stays. Idempotent.
  void Close();

 private:
  std::ostream& out_;
  const Mode mode_;
  std::function<size_t()> columns_;
  size_t lines_ = 0;  // of the last drawing
  bool cursor_hidden_ = false;
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_LIVE_SCREEN_H_

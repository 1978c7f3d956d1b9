#include "cli/live_screen.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/format.h"

namespace kfleet::cli {
namespace {

constexpr char kHome[] = "\x1b[H";
constexpr char kClearBelow[] = "\x1b[J";
constexpr char kHideCursor[] = "\x1b[?25l";
constexpr char kShowCursor[] = "\x1b[?25h";

}  // namespace

size_t TerminalColumns() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col;
}

LiveScreen::LiveScreen(std::ostream& out, Mode mode, std::function<size_t()> columns)
    : out_(out), mode_(mode), columns_(std::move(columns)) {}

void LiveScreen::Draw(const std::string& text) {
  size_t columns = columns_ ? columns_() : 0;
  std::string fitted;
  size_t lines = 0;
  std::vector<absl::string_view> pieces = absl::StrSplit(text, '\n');
  if (!pieces.empty() && pieces.back().empty()) pieces.pop_back();  // after the last newline
  for (absl::string_view line : pieces) {
    absl::StrAppend(&fitted, columns > 0 ? Shorten(std::string(line), columns) : line, "\n");
    ++lines;
  }
  if (mode_ == Mode::kFullScreen) {
    if (!cursor_hidden_) out_ << kHideCursor;
    cursor_hidden_ = true;
    out_ << kHome << kClearBelow;
  } else if (lines_ > 0) {
    // Back to the first line of the last drawing, and clear from there down.
    out_ << "\x1b[" << lines_ << "A\r" << kClearBelow;
  }
  out_ << fitted;
  out_.flush();
  lines_ = lines;
}

void LiveScreen::Close() {
  if (!cursor_hidden_) return;
  out_ << kShowCursor;
  out_.flush();
  cursor_hidden_ = false;
}

}  // namespace kfleet::cli

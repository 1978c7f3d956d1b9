#include "cli/line_prefixer.h"

#include <algorithm>

namespace kfleet::cli {

LinePrefixer::LinePrefixer(std::ostream& out, std::ostream& err, size_t max_line_bytes)
    : out_(out), err_(err), max_line_bytes_(std::max<size_t>(1, max_line_bytes)) {}

void LinePrefixer::AddHost(absl::string_view host) { width_ = std::max(width_, host.size()); }

void LinePrefixer::PrintLine(const Pending& p, absl::string_view line) {
  std::ostream& os = p.to_err ? err_ : out_;
  std::string text = p.host;
  text.append(width_ - std::min(width_, p.host.size()), ' ');
  text.append(" | ");
  text.append(line.data(), line.size());
  text.push_back('\n');
  os.write(text.data(), static_cast<std::streamsize>(text.size()));
}

void LinePrefixer::Write(absl::string_view command_id, int stream, absl::string_view host,
                         bool to_err, absl::string_view data) {
  AddHost(host);
  auto key = std::make_pair(std::string(command_id), stream);
  auto [it, inserted] = index_.emplace(key, pending_.size());
  if (inserted) pending_.push_back(Pending{std::string(host), to_err, ""});
  Pending& p = pending_[it->second];

  bool printed = false;
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == absl::string_view::npos) {
      size_t room = max_line_bytes_ - p.partial.size();
      if (data.size() < room) {
        p.partial.append(data.data(), data.size());
        break;
      }
      // Too long for one line: print what fills the buffer, keep going with the rest.
      p.partial.append(data.data(), room);
      data.remove_prefix(room);
    } else {
      p.partial.append(data.data(), nl);
      data.remove_prefix(nl + 1);
    }
    PrintLine(p, p.partial);
    p.partial.clear();
    printed = true;
  }
  if (printed) (p.to_err ? err_ : out_).flush();
}

void LinePrefixer::Flush() {
  for (Pending& p : pending_) {
    if (p.partial.empty()) continue;
    PrintLine(p, p.partial);
    p.partial.clear();
  }
  out_.flush();
  err_.flush();
}

}  // namespace kfleet::cli

#include "cli/reconnector.h"

#include <algorithm>

#include "common/duration.h"

namespace kfleet::cli {
namespace {

constexpr absl::Duration kInitialBackoff = absl::Milliseconds(250);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);

}  // namespace

Reconnector::Reconnector(Io& io, std::string address, absl::Duration window)
    : io_(io), address_(std::move(address)), window_(window) {}

void Reconnector::Connected() {
  reached_ = true;
  answered_ = true;
  if (reconnecting_) {
    reconnecting_ = false;
    io_.err << "kctl: reconnected to the controller at " << address_ << "\n";
    io_.err.flush();
  }
}

absl::Status Reconnector::Run(absl::FunctionRef<absl::Status()> attempt) {
  absl::Duration backoff = kInitialBackoff;
  absl::Time failing_since = absl::InfinitePast();
  while (true) {
    answered_ = false;
    absl::Status s = attempt();
    if (s.ok() || s.code() != absl::StatusCode::kUnavailable || !reached_) return s;
    absl::Time now = io_.now();
    if (answered_ || failing_since == absl::InfinitePast()) {
      // Lost after a stretch that worked: a new window starts.
      failing_since = now;
      backoff = kInitialBackoff;
      if (!reconnecting_) {
        reconnecting_ = true;
        io_.err << "kctl: lost the controller at " << address_ << "; reconnecting for up to "
                << FormatDuration(window_) << "\n";
        io_.err.flush();
      }
    }
    if (now - failing_since >= window_) return s;
    io_.sleep(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

}  // namespace kfleet::cli

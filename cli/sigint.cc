#include "cli/sigint.h"

#include <algorithm>
#include <atomic>
#include <cassert>

namespace kfleet::cli {
namespace {

constexpr absl::Duration kSlice = absl::Milliseconds(100);

std::atomic<bool> g_caught{false};
std::atomic<bool> g_installed{false};
static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

extern "C" void OnSigint(int) {
  if (g_caught.exchange(true)) {
    // The second Ctrl-C: the user means it. signal() and raise() are async-signal-safe.
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
  }
}

}  // namespace

SigintCatcher::SigintCatcher() {
  [[maybe_unused]] bool was_installed = g_installed.exchange(true);
  assert(!was_installed && "one SigintCatcher at a time");
  g_caught = false;
  struct sigaction action {};
  action.sa_handler = &OnSigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // calls in progress carry on; the loop checks the flag after
  sigaction(SIGINT, &action, &previous_);
}

SigintCatcher::~SigintCatcher() {
  sigaction(SIGINT, &previous_, nullptr);
  g_caught = false;
  g_installed = false;
}

bool SigintCatcher::caught() const { return g_caught.load(); }

bool SigintCatcher::SleepUnlessInterrupted(Io& io, absl::Duration d) const {
  while (d > absl::ZeroDuration() && !caught()) {
    absl::Duration slice = std::min(d, kSlice);
    io.sleep(slice);
    d -= slice;
  }
  return caught();
}

}  // namespace kfleet::cli

// Ctrl-C as a request to stop, for the commands that loop until the user ends them (`kctl top`,
// `kctl events -f`): they finish what they are doing, tidy the terminal and exit 0.
#ifndef KFLEET_CLI_SIGINT_H_
#define KFLEET_CLI_SIGINT_H_

#include <signal.h>

#include "absl/time/time.h"
#include "cli/context.h"

namespace kfleet::cli {

// While it lives, SIGINT sets a flag instead of ending the process; a second SIGINT ends the
// process as usual, so that a kctl stuck in a call still dies. The previous disposition is
// restored on destruction. A signal handler can only reach process state, so the flag is a
// process-wide static: at most one SigintCatcher may exist at a time, created and destroyed on
// the same thread.
class SigintCatcher {
 public:
  SigintCatcher();
  ~SigintCatcher();
  SigintCatcher(const SigintCatcher&) = delete;
  SigintCatcher& operator=(const SigintCatcher&) = delete;

  // True once SIGINT arrived.
  bool caught() const;

  // Sleeps `d` through io.sleep, in slices of at most 100 ms so that Ctrl-C is noticed within
  // one. Returns true when SIGINT arrived (before or during the sleep).
  bool SleepUnlessInterrupted(Io& io, absl::Duration d) const;

 private:
  struct sigaction previous_ {};
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_SIGINT_H_

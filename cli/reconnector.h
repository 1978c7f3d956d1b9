// Keeps a long-lived stream (exec, logs -f, job --watch) going across a controller restart: the
// controller stores everything durably, so kctl asks again and drops what it has already printed.
#ifndef KFLEET_CLI_RECONNECTOR_H_
#define KFLEET_CLI_RECONNECTOR_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/context.h"

namespace kfleet::cli {

// How long kctl keeps trying after the controller went away.
inline constexpr absl::Duration kReconnectWindow = absl::Minutes(2);

// Not thread-safe; one stream at a time.
class Reconnector {
 public:
  // `io` (its clock, sleep and stderr) must outlive this; `address` is for messages.
  Reconnector(Io& io, std::string address, absl::Duration window = kReconnectWindow);

  // Says the controller answered: call after a successful call and on every message. Until the
  // first call, an unreachable controller is reported at once rather than waited for.
  void Connected();

  // Runs `attempt` until it succeeds, fails with another error than an unreachable controller,
  // or the controller has been unreachable for the whole window. Backs off 250 ms doubling to
  // 5 s between attempts, and says on stderr that it is reconnecting.
  absl::Status Run(absl::FunctionRef<absl::Status()> attempt);

 private:
  Io& io_;
  std::string address_;
  absl::Duration window_;
  bool reached_ = false;       // the controller answered at least once
  bool answered_ = false;      // ... during the current attempt
  bool reconnecting_ = false;  // a "reconnecting" notice is out
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_RECONNECTOR_H_

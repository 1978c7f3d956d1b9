// What a command works with: its output streams, the clock and, once it has checked its input, the
// controller. main() builds the real ones; tests pass string streams, a fixed clock and UTC.
#ifndef KFLEET_CLI_CONTEXT_H_
#define KFLEET_CLI_CONTEXT_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <ostream>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/fleet_client.h"

namespace kfleet::cli {

struct Io {
  std::ostream& out;
  std::ostream& err;
  bool out_is_tty = false;  // redraw rather than append (job --watch, run, top)
  bool err_is_tty = false;  // progress of transfers (artifacts get)
  std::function<absl::Time()> now = [] { return absl::Now(); };
  std::function<void(absl::Duration)> sleep = [](absl::Duration d) { absl::SleepFor(d); };
  absl::TimeZone tz = absl::LocalTimeZone();
  // The width of the terminal on stdout, asked on every redraw; 0 when unknown (lines are then
  // not cut).
  std::function<size_t()> columns = [] { return size_t{0}; };
};

class Context {
 public:
  using Connector = std::function<absl::StatusOr<std::unique_ptr<FleetClient>>()>;

  // `connect` is called at most once, by the first fleet().
  Context(Io& io, Connector connect) : io(io), connect_(std::move(connect)) {}

  // The controller client, connected on first use so that a command reports bad input before it
  // reports a controller it cannot reach.
  absl::StatusOr<FleetClient*> fleet() {
    if (fleet_ == nullptr) {
      absl::StatusOr<std::unique_ptr<FleetClient>> c = connect_();
      if (!c.ok()) return c.status();
      fleet_ = *std::move(c);
    }
    return fleet_.get();
  }

  Io& io;

 private:
  Connector connect_;
  std::unique_ptr<FleetClient> fleet_;
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_CONTEXT_H_

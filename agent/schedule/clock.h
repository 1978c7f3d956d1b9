// The time seam of the schedule runner: the real clock here, a settable one in fake_clock.h.
#ifndef KFLEET_AGENT_SCHEDULE_CLOCK_H_
#define KFLEET_AGENT_SCHEDULE_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kfleet::agent {

// Wall-clock time (schedules are persisted as Unix times, so they survive restarts and reboots).
// Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SCHEDULE_CLOCK_H_

// A Clock for tests: starts at a fixed time and moves only when told to.
#ifndef KFLEET_AGENT_SCHEDULE_FAKE_CLOCK_H_
#define KFLEET_AGENT_SCHEDULE_FAKE_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/schedule/clock.h"

namespace kfleet::agent {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SCHEDULE_FAKE_CLOCK_H_

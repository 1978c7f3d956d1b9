// A RunLauncher for tests: records each launch and answers with a status the test sets.
#ifndef KFLEET_AGENT_SCHEDULE_FAKE_RUN_LAUNCHER_H_
#define KFLEET_AGENT_SCHEDULE_FAKE_RUN_LAUNCHER_H_

#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "agent/schedule/run_launcher.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::agent {

class FakeRunLauncher final : public RunLauncher {
 public:
  absl::Status Launch(const kfleet::v1::ScheduleSpec& spec,
                      const kfleet::v1::ScheduleRunStarted& run) override {
    std::function<void(const kfleet::v1::ScheduleRunStarted&)> hook;
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      runs_.push_back(run);
      status = status_;
      hook = on_launch_;
    }
    if (hook) hook(run);
    return status;
  }

  // What Launch returns from now on.
  void set_status(absl::Status s) {
    absl::MutexLock lock(&mu_);
    status_ = std::move(s);
  }
  // Called by Launch after recording the run, outside the fake's lock.
  void set_on_launch(std::function<void(const kfleet::v1::ScheduleRunStarted&)> hook) {
    absl::MutexLock lock(&mu_);
    on_launch_ = std::move(hook);
  }
  std::vector<kfleet::v1::ScheduleRunStarted> runs() const {
    absl::MutexLock lock(&mu_);
    return runs_;
  }
  size_t count() const {
    absl::MutexLock lock(&mu_);
    return runs_.size();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<kfleet::v1::ScheduleRunStarted> runs_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::function<void(const kfleet::v1::ScheduleRunStarted&)> on_launch_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SCHEDULE_FAKE_RUN_LAUNCHER_H_

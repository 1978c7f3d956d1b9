// Runs a host's schedules (DESIGN.md, "Schedules"): each is started `every_after` (plus a random
// delay below `jitter`) after its previous run ended, as systemd's OnUnitInactiveSec; never two
// runs of one schedule at once. The set comes from the controller (SetSchedules), each run is
// started through a RunLauncher, and the agent reports each run's end (OnRunFinished).
//
// The schedules and their run bookkeeping are kept in the state dir (schedules.pb, format in
// schedule_state.proto), rewritten atomically on every change, so that they keep running while
// the controller is unreachable and resume their spacing after a restart of the agent.
//
// Semantics:
//   - A schedule first seen runs at once (plus its delay), unless the agent knows a previous end
//     for that name (a schedule removed and added again keeps its spacing).
//   - Paused: no new runs; a run in flight finishes. Resumed: due at last end + every_after.
//   - Removed: no new runs; a run in flight finishes (the controller sends Cancel if asked to).
//   - A run that was in flight when the agent stopped counts as ended when it starts again.
//   - A time in the state that lies in the future (the clock was stepped back) counts as now.
#ifndef KFLEET_AGENT_SCHEDULE_SCHEDULE_RUNNER_H_
#define KFLEET_AGENT_SCHEDULE_SCHEDULE_RUNNER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/schedule/clock.h"
#include "agent/schedule/run_launcher.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::agent {

struct ScheduleRunnerOptions {
  // STATE_DIR/schedules.pb; empty: nothing is kept (tests).
  std::string state_path;
  // A uniform random integer in [0, n), n > 0, for the jitter delays. Default: absl::BitGen.
  std::function<uint64_t(uint64_t n)> random;
  // The command id of each run. Default: NewId("c-"), the controller's own format.
  std::function<std::string()> new_command_id;
};

// One schedule as the runner sees it, for status output and tests.
struct ScheduleStatus {
  std::string name;
  bool active = false;  // in the controller's set; false: removed, kept for its run or last end
  bool paused = false;
  uint64_t revision = 0;
  absl::Time due = absl::InfiniteFuture();  // next start; InfiniteFuture: running, paused, removed
  absl::Time last_end = absl::InfinitePast();  // InfinitePast: none known
  std::string running;                         // command id of the run in flight; empty: none
};

class ScheduleRunner {
 public:
  // Loads `options.state_path` if it exists. A damaged file is set aside as `<path>.bad` (with a
  // warning) and the runner starts empty; the next ScheduleSet from the controller fills it again.
  // `clock` and `launcher` must outlive the runner.
  static std::unique_ptr<ScheduleRunner> Open(ScheduleRunnerOptions options, const Clock* clock,
                                              RunLauncher* launcher);
  ~ScheduleRunner();  // Stop()s
  ScheduleRunner(const ScheduleRunner&) = delete;
  ScheduleRunner& operator=(const ScheduleRunner&) = delete;

  // Starts the thread that launches due runs. Stop() wakes and joins it (a Launch in progress
  // completes first); OnRunFinished still records ends after Stop(). Neither may race the other.
  void Start();
  void Stop();

  // The controller's set: replaces every schedule (one missing from it is removed). Invalid specs
  // (ValidateScheduleSpec), a name given twice and specs past kMaxSchedules are refused, each
  // logged; the others are applied, and the result is InvalidArgument naming the refused ones.
  // Thread-safe.
  absl::Status SetSchedules(const kfleet::v1::ScheduleSet& set);

  // The command `command_id` ended at `end`: if it was a run of a schedule, the next run of that
  // schedule is due at `end` + every_after + a new delay. Returns whether it was one. Thread-safe.
  bool OnRunFinished(const std::string& command_id, absl::Time end);

  // Launches every run due at clock->Now() and returns when the next one is due (InfiniteFuture:
  // none, or stopped). The runner's thread calls it; tests call it directly instead of Start().
  absl::Time RunDue();

  // Every schedule, by name. Thread-safe.
  std::vector<ScheduleStatus> Snapshot() const;

 private:
  struct Entry {
    std::optional<kfleet::v1::ScheduleSpec> spec;  // nullopt: removed
    absl::Time first_seen;
    absl::Time last_end = absl::InfinitePast();
    absl::Duration delay;  // jitter drawn for the next run
    std::string running;   // command id of the run in flight
    absl::Time running_since;
  };

  ScheduleRunner(ScheduleRunnerOptions options, const Clock* clock, RunLauncher* launcher);
  void Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PersistLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration DrawDelay(uint64_t jitter_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // When `e`'s next run is due; InfiniteFuture if it may not start (running, paused, removed).
  // Moves times later than `now` (a clock stepped back) to `now`.
  static absl::Time DueOf(Entry& e, absl::Time now);
  // Forgets the oldest removed schedules beyond kMaxSchedules of them.
  void TrimRemovedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool WokenLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || changed_; }
  void Loop();

  ScheduleRunnerOptions options_;
  const Clock* clock_;
  RunLauncher* launcher_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::BitGen gen_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool changed_ ABSL_GUARDED_BY(mu_) = false;  // wakes the thread to recompute due times
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SCHEDULE_SCHEDULE_RUNNER_H_

// The controller's durable state of schedules (DESIGN.md, "Schedules"): the schedules, which
// hosts were sent which, and their runs. A run is an ordinary job of one command, made when the
// agent says it started one (ScheduleRunStarted), under the command id the agent made, so the
// usual command items, logs and results apply to it unchanged.
//
// Removed schedules are kept as tombstones: a host that was offline may still send runs of a
// schedule removed meanwhile, and those are stored like any other. A run is accepted from a host
// only for a schedule (live or removed) the controller has sent that host.
#ifndef KFLEET_CONTROLLER_STORE_SCHEDULE_STORE_H_
#define KFLEET_CONTROLLER_STORE_SCHEDULE_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kfleet/v1/agent.pb.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::controller {

// How many runs are kept per (schedule, host) unless SetScheduleRunsKept says otherwise; older
// runs go with their jobs, commands, test results and logs.
inline constexpr int kScheduleRunsKept = 100;
// The most schedules one host is given (an agent runs no more).
inline constexpr int kMaxSchedulesPerHost = 256;

// What storing the ScheduleRunStarted items of a batch did.
struct ScheduleRunsOutcome {
  // Items refused (a command id in use, a schedule this host was never sent), in words for a
  // ProtocolError. The item is acknowledged all the same.
  std::vector<std::string> problems;
  // Commands of runs pruned past the bound: their logs are the caller's to delete.
  std::vector<std::string> pruned_commands;
  int stored = 0;  // new runs
};

// What removing a schedule did.
struct ScheduleRemoval {
  kfleet::v1::Schedule schedule;                 // as it was
  std::vector<kfleet::v1::ScheduleRun> running;  // runs in progress
  // With cancel: the running runs' commands, to send Cancel (PendingCancels resends them to an
  // agent that is offline now).
  std::vector<std::string> cancel_commands;
  std::vector<std::string> host_ids;  // hosts it was sent to or applies to: push their sets
};

// Per (schedule, host): what the controller's /metrics exports. Counters count every run stored
// since the schedule name was first used, pruned runs included.
struct ScheduleRunStats {
  std::string schedule;
  std::string host_id;
  std::string host_name;
  int64_t pass = 0;
  int64_t fail = 0;
  int64_t oom = 0;
  int64_t timeout = 0;
  int64_t oom_kills = 0;    // kernel OOM kills in the runs' cgroups
  int64_t last_end_ms = 0;  // agent clock; 0: no run ended yet
  int64_t last_duration_ms = 0;
  int64_t last_peak_bytes = 0;
};

// All methods are thread-safe. Errors: NotFound (no such schedule), AlreadyExists (a live
// schedule of that name), Internal for storage failures. Input is validated by the caller
// (controller/api/schedule_service.cc).
class ScheduleStore {
 public:
  virtual ~ScheduleStore() = default;

  // Stores a new schedule with the next revision; AlreadyExists if a live one has the name,
  // ResourceExhausted if a host it applies to has kMaxSchedulesPerHost already.
  virtual absl::StatusOr<kfleet::v1::Schedule> AddSchedule(const kfleet::v1::Schedule& schedule,
                                                           int64_t now_ms) = 0;
  // Live schedules by name, each with the hosts it applies to now and their last runs.
  virtual absl::StatusOr<std::vector<kfleet::v1::Schedule>> ListSchedules() = 0;
  virtual absl::StatusOr<kfleet::v1::Schedule> GetSchedule(const std::string& name) = 0;
  // Sets `paused` and the next revision (also when it already was).
  virtual absl::StatusOr<kfleet::v1::Schedule> SetSchedulePaused(const std::string& name,
                                                                 bool paused, int64_t now_ms) = 0;
  // Makes the schedule a tombstone. With `cancel`, its running runs' commands (and jobs) are
  // marked cancelled and returned to be sent Cancel.
  virtual absl::StatusOr<ScheduleRemoval> RemoveSchedule(const std::string& name, bool cancel,
                                                         int64_t now_ms) = 0;
  // The hosts a live schedule applies to now or was sent to: whose sets change with it.
  virtual absl::StatusOr<std::vector<std::string>> ScheduleHostIds(const std::string& name) = 0;

  // Every live schedule that applies to the host (by name or labels), as the agent is sent it;
  // records that the host was sent them, so their runs are accepted from it.
  virtual absl::StatusOr<kfleet::v1::ScheduleSet> ScheduleSetFor(const std::string& host_id) = 0;

  // Stores the runs that `items` (a batch of the host's sequenced items; only schedule_run items
  // past the host's last stored seq count) start: a job of one command under the agent's command
  // id, accepted. Idempotent by command id; prunes the (schedule, host)'s runs past the bound.
  // Called before the batch's log chunks are written, so they find their command.
  virtual absl::StatusOr<ScheduleRunsOutcome> StartScheduleRuns(
      const std::string& host_id, const std::vector<kfleet::v1::SequencedItem>& items,
      int64_t now_ms) = 0;

  // Runs of the schedule name (live or removed) on `host_id` (empty: all hosts). after_change 0:
  // the newest `limit`, oldest first; else those whose change is larger, by change, up to limit.
  virtual absl::StatusOr<std::vector<kfleet::v1::ScheduleRun>> ListScheduleRuns(
      const std::string& name, const std::string& host_id, int limit, uint64_t after_change) = 0;

  // Counters and last-run gauges of live schedules, per host that ran them.
  virtual absl::StatusOr<std::vector<ScheduleRunStats>> ListScheduleRunStats() = 0;

  // The bound on runs kept per (schedule, host); at least 1.
  virtual void SetScheduleRunsKept(int runs) = 0;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_STORE_SCHEDULE_STORE_H_

// Store on SQLite (WAL, synchronous=FULL): one connection behind a mutex. Every method is one
// transaction, so a crash leaves the state of the last committed call.
#ifndef KFLEET_CONTROLLER_STORE_SQLITE_STORE_H_
#define KFLEET_CONTROLLER_STORE_SQLITE_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "controller/store/sqlite.h"
#include "controller/store/store.h"

namespace kfleet::controller {

class SqliteStore : public Store {
 public:
  // Opens or creates the database at `path` and migrates its schema.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path);

  absl::StatusOr<kfleet::v1::Host> RegisterHost(const kfleet::v1::Hello& hello,
                                                int64_t now_ms) override;
  absl::Status SetHostState(const std::string& host_id, kfleet::v1::HostState state,
                            int64_t last_seen_ms) override;
  absl::Status MarkAllOffline() override;
  absl::StatusOr<std::vector<kfleet::v1::Host>> ListHosts() override;
  absl::StatusOr<kfleet::v1::Host> GetHost(const std::string& name_or_id) override;
  absl::StatusOr<uint64_t> LastSeq(const std::string& host_id) override;
  absl::StatusOr<std::pair<kfleet::v1::Job, std::vector<Dispatch>>> CreateJob(
      const kfleet::v1::JobSpec& spec, const std::vector<std::string>& host_ids,
      const std::string& submitter, int64_t now_ms, const std::string& builder_host_id) override;
  absl::StatusOr<kfleet::v1::Job> GetJob(const std::string& job_id) override;
  absl::StatusOr<std::vector<kfleet::v1::Job>> ListJobs(int limit) override;
  absl::StatusOr<StoreStateCounts> CountStates() override;
  absl::StatusOr<kfleet::v1::CommandInfo> GetCommand(const std::string& command_id) override;
  absl::StatusOr<std::vector<kfleet::v1::Command>> PendingCommands(
      const std::string& host_id) override;
  absl::StatusOr<std::vector<CancelOrder>> PendingCancels(const std::string& host_id) override;
  absl::StatusOr<std::string> CommandHost(const std::string& command_id) override;
  absl::StatusOr<ApplyOutcome> ApplySequenced(const std::string& host_id,
                                              const std::vector<kfleet::v1::SequencedItem>& items,
                                              int64_t now_ms) override;
  absl::StatusOr<CancelOutcome> CancelJob(const std::string& job_id, int64_t now_ms) override;

  absl::StatusOr<ApplyOutcome> HostBooted(const std::string& host_id,
                                          const std::string& old_boot_id,
                                          const std::string& boot_id, int64_t now_ms) override;
  absl::StatusOr<std::vector<kfleet::v1::CommandInfo>> OverdueReboots(int64_t now_ms) override;
  absl::StatusOr<std::vector<kfleet::v1::CommandInfo>> PendingControllerCommands() override;
  absl::Status MarkStarted(const std::string& command_id, int64_t now_ms) override;
  absl::StatusOr<ApplyOutcome> FinishCommand(const std::string& command_id,
                                             const kfleet::v1::CommandResult& result,
                                             int64_t now_ms) override;
  absl::StatusOr<std::vector<Dispatch>> AssignWaiting(int64_t now_ms) override;
  absl::StatusOr<std::vector<std::map<std::string, std::string>>> WaitingSelectors() override;
  absl::StatusOr<std::set<std::string>> BusyHosts() override;
  absl::Status PutGuest(const kfleet::v1::Guest& guest) override;
  absl::Status DeleteGuest(const std::string& name) override;
  absl::StatusOr<std::vector<kfleet::v1::Guest>> ListGuests() override;
  absl::Status ForgetHost(const std::string& host_id) override;
  absl::Status AddEvent(const kfleet::v1::Event& event) override;
  absl::StatusOr<std::vector<kfleet::v1::Event>> ListEvents(const std::string& host_id,
                                                            const std::string& kind, int limit,
                                                            uint64_t after_id) override;
  absl::StatusOr<std::vector<kfleet::v1::TestRecord>> JobResults(
      const std::string& job_id) override;
  absl::StatusOr<std::vector<kfleet::v1::TestRecord>> TestHistory(
      const std::string& job_id, const std::string& other_job_id) override;
  absl::StatusOr<ApplyOutcome> HostLost(const std::string& host_id, const std::string& why,
                                        int64_t now_ms) override;
  absl::Status PutExpunges(const std::vector<kfleet::v1::ExpungeFile>& files,
                           const std::vector<std::vector<kfleet::v1::ExpungeEntry>>& entries,
                           bool replace) override;
  absl::StatusOr<std::vector<kfleet::v1::ExpungeFile>> ExpungeFiles(const std::string& kernel,
                                                                    const std::string& fs) override;
  absl::StatusOr<std::vector<kfleet::v1::RemovalCandidate>> RemovalCandidates(
      const std::string& kernel, const std::string& fs, int streak) override;

  // Schedules (sqlite_store_schedules.cc, sqlite_store_schedule_runs.cc).
  absl::StatusOr<kfleet::v1::Schedule> AddSchedule(const kfleet::v1::Schedule& schedule,
                                                   int64_t now_ms) override;
  absl::StatusOr<std::vector<kfleet::v1::Schedule>> ListSchedules() override;
  absl::StatusOr<kfleet::v1::Schedule> GetSchedule(const std::string& name) override;
  absl::StatusOr<kfleet::v1::Schedule> SetSchedulePaused(const std::string& name, bool paused,
                                                         int64_t now_ms) override;
  absl::StatusOr<ScheduleRemoval> RemoveSchedule(const std::string& name, bool cancel,
                                                 int64_t now_ms) override;
  absl::StatusOr<std::vector<std::string>> ScheduleHostIds(const std::string& name) override;
  absl::StatusOr<kfleet::v1::ScheduleSet> ScheduleSetFor(const std::string& host_id) override;
  absl::StatusOr<ScheduleRunsOutcome> StartScheduleRuns(
      const std::string& host_id, const std::vector<kfleet::v1::SequencedItem>& items,
      int64_t now_ms) override;
  absl::StatusOr<std::vector<kfleet::v1::ScheduleRun>> ListScheduleRuns(
      const std::string& name, const std::string& host_id, int limit,
      uint64_t after_change) override;
  absl::StatusOr<std::vector<ScheduleRunStats>> ListScheduleRunStats() override;
  void SetScheduleRunsKept(int runs) override;

 private:
  explicit SqliteStore(SqliteDb db) : db_(std::move(db)) {}

  // Helpers below run inside a transaction the caller holds, with mu_ held.
  absl::StatusOr<kfleet::v1::Host> LoadHost(const std::string& where, const std::string& arg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<kfleet::v1::Job> LoadJob(const std::string& job_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<kfleet::v1::CommandInfo>> LoadCommands(const std::string& where,
                                                                    const std::string& arg)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<kfleet::v1::Command> InsertCommand(const std::string& job_id,
                                                    const std::string& host_id, int step_index,
                                                    const kfleet::v1::Step& step,
                                                    kfleet::v1::CommandState state, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies one item; may add to `outcome`.
  absl::Status ApplyOne(const std::string& host_id, const kfleet::v1::SequencedItem& item,
                        int64_t now_ms, ApplyOutcome* outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends a command (if not ended): stores the result, creates the host's next step or skips the
  // rest, ends the job when it can.
  absl::Status FinishLocked(const std::string& command_id, const kfleet::v1::CommandFinished& fin,
                            int64_t now_ms, ApplyOutcome* outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the job if all its commands ended; returns true if it did.
  absl::StatusOr<bool> MaybeFinishJob(const std::string& job_id, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The step after `index - 1` on `host_id`: pending, or skipped with the rest when !go_on.
  absl::Status NextStep(const std::string& job_id, const kfleet::v1::JobSpec& spec,
                        const std::string& host_id, int index, bool go_on, int64_t now_ms,
                        ApplyOutcome* outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a build-once job's kernel_build ended: step 1 on every target, or, with no build, every
  // later step skipped on every target.
  absl::Status FanOut(const std::string& job_id, const kfleet::v1::JobSpec& spec,
                      const kfleet::v1::KernelBuild* build, int64_t now_ms, ApplyOutcome* outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<kfleet::v1::KernelBuild>> JobBuild(const std::string& job_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddEventLocked(const kfleet::v1::Event& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A kernel event from the agent of `host_id` (sqlite_store_events.cc): stored as an
  // event of its timeline, once per kmsg record, and returned in outcome->events,
  // history_events or event_clashes.
  absl::Status AddKernelEventLocked(const std::string& host_id,
                                    const kfleet::v1::KernelEvent& event, ApplyOutcome* outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The event stored for kmsg record `seq` of boot `boot_id`, if any.
  absl::StatusOr<std::optional<kfleet::v1::Event>> EventOfRecordLocked(const std::string& boot_id,
                                                                       uint64_t seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::set<std::string>> BusyHostsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The highest sequenced item stored for `host_id` (NotFound for an unknown host).
  absl::StatusOr<uint64_t> LastSeqLocked(const std::string& host_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Test steps (sqlite_store_tests.cc) ---
  // A test result from the agent of `host_id`, stored once with the job's kernel.
  absl::Status AddTestResultLocked(const std::string& host_id,
                                   const kfleet::v1::TestResultReport& report, int64_t now_ms,
                                   ApplyOutcome* outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores `r` unless the command has that result already; a stored one is added to
  // `outcome->test_results`.
  absl::Status InsertResultLocked(const std::string& command_id, const kfleet::v1::TestResult& r,
                                  int64_t now_ms, ApplyOutcome* outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step `index` reaches `host_id` (filled for it): a sharded test step makes the host join the
  // step's queue; any other step becomes a pending command to dispatch.
  absl::Status StartStep(const std::string& job_id, const kfleet::v1::JobSpec& spec,
                         const std::string& host_id, int index, const kfleet::v1::Step& step,
                         int64_t now_ms, ApplyOutcome* outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `tests` of a sharded step with their expected durations.
  absl::Status FillShardQueue(const std::string& job_id, int index, const kfleet::v1::TestStep& t,
                              const std::vector<std::string>& tests)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The state of `host_id` in sharded step `index` (idle, busy, done, lost).
  absl::Status SetShardHost(const std::string& job_id, int index, const std::string& host_id,
                            int state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives every idle host of a sharded step its next test (longest first), a listing, or, when
  // none is left, its next step.
  absl::Status ShardPull(const std::string& job_id, const kfleet::v1::JobSpec& spec, int index,
                         int64_t now_ms, ApplyOutcome* outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A test command ended: re-runs of its failures, the sharded step's next test. Returns false
  // when the usual next step applies.
  absl::StatusOr<bool> TestCommandEnded(const std::string& command_id, const std::string& job_id,
                                        const kfleet::v1::JobSpec& spec, const std::string& host_id,
                                        int index, const kfleet::v1::Step& step,
                                        const kfleet::v1::CommandResult& result, bool host_ok,
                                        int64_t now_ms, ApplyOutcome* outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A test step as its command runs it: run 1, expunges of expunge_from added.
  absl::StatusOr<kfleet::v1::Step> PrepareTestStep(kfleet::v1::Step step)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<kfleet::v1::TestProgress> LoadTestProgress(const kfleet::v1::Job& job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<kfleet::v1::TestRecord>> LoadResults(
      const std::string& where, const std::vector<std::string>& args)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // --- Schedule runs (sqlite_store_schedule_runs.cc) ---
  // Stores the run an agent started (idempotent by command id) and prunes past the bound; a
  // refused run adds to outcome->problems.
  absl::Status StartScheduleRunLocked(const std::string& host_id,
                                      const kfleet::v1::ScheduleRunStarted& run, int64_t now_ms,
                                      ScheduleRunsOutcome* outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A command ended: if it is a schedule run, its outcome and the schedule's counters.
  absl::Status ScheduleRunEndedLocked(const std::string& command_id,
                                      const kfleet::v1::CommandResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `fn` in BEGIN IMMEDIATE ... COMMIT, rolling back on error.
  template <typename Fn>
  auto InTransaction(Fn fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> decltype(fn());

  absl::Mutex mu_;
  SqliteDb db_ ABSL_GUARDED_BY(mu_);
  int schedule_runs_kept_ ABSL_GUARDED_BY(mu_) = kScheduleRunsKept;
};

// The schema migration that adds the schedule tables (sqlite_store_schedules.cc).
const char* ScheduleSchemaSql();

template <typename Fn>
auto SqliteStore::InTransaction(Fn fn) -> decltype(fn()) {
  if (absl::Status s = Exec(db_.get(), "BEGIN IMMEDIATE"); !s.ok()) return s;
  auto result = fn();
  if (result.ok()) {
    if (absl::Status s = Exec(db_.get(), "COMMIT"); !s.ok()) {
      Exec(db_.get(), "ROLLBACK").IgnoreError();
      return s;
    }
  } else {
    Exec(db_.get(), "ROLLBACK").IgnoreError();
  }
  return result;
}

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_STORE_SQLITE_STORE_H_

// The controller's durable state: hosts, jobs, commands. SQLite is the embedded implementation
// (sqlite_store.h); the interface lets a larger installation put PostgreSQL behind it later.
#ifndef KFLEET_CONTROLLER_STORE_STORE_H_
#define KFLEET_CONTROLLER_STORE_STORE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/store/schedule_store.h"
#include "kfleet/v1/agent.pb.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::controller {

// A command to send to the agent of `host_id`.
struct Dispatch {
  std::string host_id;
  kfleet::v1::Command command;
};

// A cancel to send to the agent of `host_id`.
struct CancelOrder {
  std::string host_id;
  std::string command_id;
  std::string reason;
};

// A kernel log record that was stored before: one record (boot id, kmsg seq) is one event, and
// two agents on one machine (a controller's local builder beside a host agent) both report it.
// The copy that names its command wins over one that names none, and news over history
// (before_agent); between equals the first stays.
struct KernelEventClash {
  kfleet::v1::Event reported;  // this host's copy: dropped, or stored with a new id if `replaced`
  kfleet::v1::Event stored;    // the copy stored before (its id, host and command)
  bool replaced = false;       // this host's copy replaced the one stored before
};

// A test result row stored (kfleet_test_results_total): its suite and status, not its name.
struct StoredTestResult {
  std::string suite;
  kfleet::v1::TestStatus status = kfleet::v1::TEST_STATUS_UNSPECIFIED;
};

// What applying a batch of sequenced items changed, for the caller to act on.
struct ApplyOutcome {
  uint64_t last_seq = 0;             // the host's highest stored seq after the batch
  std::vector<Dispatch> dispatch;    // next steps created by finished commands
  std::vector<CancelOrder> cancels;  // commands the agent accepted after they were cancelled
  std::vector<std::string> finished_jobs;
  int skipped_items = 0;  // already stored (resent after a reconnect)
  // Kernel events stored as news (OOM kills, oopses...): each record once, when it is first
  // stored as news.
  std::vector<kfleet::v1::Event> events;
  // Kernel events stored as history (before_agent): on the timeline, but not news.
  std::vector<kfleet::v1::Event> history_events;
  // Kernel records this host reported that were stored before (see KernelEventClash).
  std::vector<KernelEventClash> event_clashes;
  // For each command its agent accepted: from the command's creation to its acceptance.
  std::vector<int64_t> dispatch_latency_ms;
  // Test results stored: reported by the agent, or recorded as errors for a lost host. A result
  // already stored (resent after a reconnect) is not here again.
  std::vector<StoredTestResult> test_results;
};

// How many commands and jobs are in each state, by lower-case state name ("pending", "running").
struct StoreStateCounts {
  std::map<std::string, int64_t> commands;
  std::map<std::string, int64_t> jobs;
};

// What a cancel changed.
struct CancelOutcome {
  kfleet::v1::Job job;
  std::vector<CancelOrder> cancels;  // commands running on agents: send them Cancel
};

// A reboot with a one-time kernel command line is done by the controller through the guest's
// provider, never sent to the agent.
// So is a kernel install or reboot through the provider of a guest booted directly by its
// hypervisor (step_fill.h).
inline bool RunsOnController(const kfleet::v1::Step& step) {
  return (step.has_reboot() &&
          (!step.reboot().cmdline().empty() || step.reboot().via_provider())) ||
         (step.has_kernel_install() && step.kernel_install().via_provider());
}

// All methods are thread-safe. Errors are absl codes: NotFound, InvalidArgument,
// FailedPrecondition, Internal for storage failures. Schedules: schedule_store.h.
class Store : public ScheduleStore {
 public:
  virtual ~Store() = default;

  // Registers or refreshes the host of a Hello and marks it online. A new host id whose name is
  // taken by an online host is refused (AlreadyExists); a name held by an offline host is taken
  // over and the old record renamed "<name>~<id prefix>".
  virtual absl::StatusOr<kfleet::v1::Host> RegisterHost(const kfleet::v1::Hello& hello,
                                                        int64_t now_ms) = 0;
  virtual absl::Status SetHostState(const std::string& host_id, kfleet::v1::HostState state,
                                    int64_t last_seen_ms) = 0;
  // Marks every host offline: on controller start, before any agent has said Hello.
  virtual absl::Status MarkAllOffline() = 0;
  virtual absl::StatusOr<std::vector<kfleet::v1::Host>> ListHosts() = 0;
  virtual absl::StatusOr<kfleet::v1::Host> GetHost(const std::string& name_or_id) = 0;
  virtual absl::StatusOr<uint64_t> LastSeq(const std::string& host_id) = 0;

  // Stores the job and the commands of its first step on `host_ids` (pending), in one
  // transaction. Returns the job and what to dispatch. A job that builds a kernel once
  // (BuildsOnce) gets its kernel_build command on `builder_host_id` instead; the steps after it
  // are created on `host_ids` (or the hosts its selector's count waits for) when the build passed.
  virtual absl::StatusOr<std::pair<kfleet::v1::Job, std::vector<Dispatch>>> CreateJob(
      const kfleet::v1::JobSpec& spec, const std::vector<std::string>& host_ids,
      const std::string& submitter, int64_t now_ms, const std::string& builder_host_id) = 0;
  virtual absl::StatusOr<kfleet::v1::Job> GetJob(const std::string& job_id) = 0;
  // Newest first.
  virtual absl::StatusOr<std::vector<kfleet::v1::Job>> ListJobs(int limit) = 0;
  virtual absl::StatusOr<StoreStateCounts> CountStates() = 0;
  virtual absl::StatusOr<kfleet::v1::CommandInfo> GetCommand(const std::string& command_id) = 0;

  // Commands for `host_id` not yet accepted by its agent (to send on a new session), and commands
  // it accepted whose cancel is pending.
  virtual absl::StatusOr<std::vector<kfleet::v1::Command>> PendingCommands(
      const std::string& host_id) = 0;
  virtual absl::StatusOr<std::vector<CancelOrder>> PendingCancels(const std::string& host_id) = 0;

  // Owner host of a command, NotFound if there is no such command.
  virtual absl::StatusOr<std::string> CommandHost(const std::string& command_id) = 0;

  // Applies sequenced items of `host_id` in one transaction; items with seq <= the stored last
  // seq are skipped, so a resent batch changes nothing. A kernel event names a command only if
  // it is the host's own (else it is stored without one); a kernel record stored before, from
  // another agent on the machine, is stored once (KernelEventClash), its item applied all the
  // same (so the agent's outbox moves on).
  virtual absl::StatusOr<ApplyOutcome> ApplySequenced(
      const std::string& host_id, const std::vector<kfleet::v1::SequencedItem>& items,
      int64_t now_ms) = 0;

  // Cancels a job: pending commands end as CANCELLED at once; accepted and running ones are
  // returned for the caller to send Cancel. FailedPrecondition if the job already ended.
  virtual absl::StatusOr<CancelOutcome> CancelJob(const std::string& job_id, int64_t now_ms) = 0;

  // --- Reboots and boots ---

  // The host registered with boot id `boot_id`, different from the one it had: its reboot
  // commands pass (wall time = reboot to registration), and its other accepted or running commands
  // are lost with the boot they ran in. Records a `boot` event.
  virtual absl::StatusOr<ApplyOutcome> HostBooted(const std::string& host_id,
                                                  const std::string& old_boot_id,
                                                  const std::string& boot_id, int64_t now_ms) = 0;
  // Reboot commands started (or accepted) before `now` minus their timeout that have not seen the
  // host come back.
  virtual absl::StatusOr<std::vector<kfleet::v1::CommandInfo>> OverdueReboots(int64_t now_ms) = 0;
  // Pending commands that RunsOnController, with a host assigned.
  virtual absl::StatusOr<std::vector<kfleet::v1::CommandInfo>> PendingControllerCommands() = 0;
  // Marks a command started by the controller itself.
  virtual absl::Status MarkStarted(const std::string& command_id, int64_t now_ms) = 0;
  // Ends a command with `result` (if it has not ended), as if its agent had reported it.
  virtual absl::StatusOr<ApplyOutcome> FinishCommand(const std::string& command_id,
                                                     const kfleet::v1::CommandResult& result,
                                                     int64_t now_ms) = 0;

  // --- Waiting commands (selectors with a count) ---

  // Gives waiting commands idle online hosts that carry their labels (one command per host at a
  // time, distinct hosts within a job). Returns what to send.
  virtual absl::StatusOr<std::vector<Dispatch>> AssignWaiting(int64_t now_ms) = 0;
  // The label selectors of commands still waiting for a host, one entry per command.
  virtual absl::StatusOr<std::vector<std::map<std::string, std::string>>> WaitingSelectors() = 0;
  // Hosts with a command assigned and not ended (pending, accepted, running).
  virtual absl::StatusOr<std::set<std::string>> BusyHosts() = 0;

  // --- Guests and events ---

  virtual absl::Status PutGuest(const kfleet::v1::Guest& guest) = 0;
  virtual absl::Status DeleteGuest(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<kfleet::v1::Guest>> ListGuests() = 0;
  // Removes a host record (a destroyed guest); its jobs keep their history.
  virtual absl::Status ForgetHost(const std::string& host_id) = 0;
  virtual absl::Status AddEvent(const kfleet::v1::Event& event) = 0;
  // The newest `limit` events (of a host, of a kind; empty: all), oldest first; with after_id > 0
  // the oldest `limit` events whose id is larger (to follow the timeline).
  virtual absl::StatusOr<std::vector<kfleet::v1::Event>> ListEvents(const std::string& host_id,
                                                                    const std::string& kind,
                                                                    int limit,
                                                                    uint64_t after_id) = 0;

  // --- Tests and results (DESIGN.md, "Tests and results") ---

  // Every test result of a job, by suite, section, name, run.
  virtual absl::StatusOr<std::vector<kfleet::v1::TestRecord>> JobResults(
      const std::string& job_id) = 0;
  // Every stored run, of any job, of the tests `job_id` or `other_job_id` ran (same suite,
  // section and name), each once. `other_job_id` may be empty.
  virtual absl::StatusOr<std::vector<kfleet::v1::TestRecord>> TestHistory(
      const std::string& job_id, const std::string& other_job_id) = 0;
  // The host went offline: the tests of sharded test steps it was running end as errors (`why`
  // says what happened; the command's console log is named), the host leaves those steps, and
  // the tests left go to the other hosts.
  virtual absl::StatusOr<ApplyOutcome> HostLost(const std::string& host_id, const std::string& why,
                                                int64_t now_ms) = 0;
  // Stores expunge files (and their parsed entries, one list per file). With `replace`, the
  // stored files of each (kernel, fs) imported are dropped first.
  virtual absl::Status PutExpunges(
      const std::vector<kfleet::v1::ExpungeFile>& files,
      const std::vector<std::vector<kfleet::v1::ExpungeEntry>>& entries, bool replace) = 0;
  // Stored expunge files (empty kernel or fs: all), by kernel, fs, section.
  virtual absl::StatusOr<std::vector<kfleet::v1::ExpungeFile>> ExpungeFiles(
      const std::string& kernel, const std::string& fs) = 0;
  // Expunged tests whose newest `streak` stored fstests runs (in the expunge's section) all
  // passed.
  virtual absl::StatusOr<std::vector<kfleet::v1::RemovalCandidate>> RemovalCandidates(
      const std::string& kernel, const std::string& fs, int streak) = 0;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_STORE_STORE_H_

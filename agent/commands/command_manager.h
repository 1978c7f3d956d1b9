// Runs the commands the controller gives: records each as accepted before anything else, runs it
// in its own process group, streams its output into the outbox, and reports Accepted, Started and
// Finished as sequenced outbox items. Commands interrupted by an agent crash are reported once, as
// lost, and never run again.
#ifndef KFLEET_AGENT_COMMANDS_COMMAND_MANAGER_H_
#define KFLEET_AGENT_COMMANDS_COMMAND_MANAGER_H_

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/commands/command_book.h"
#include "agent/exec/cgroup.h"
#include "agent/exec/process.h"
#include "agent/outbox/outbox.h"
#include "kfleet/v1/agent.pb.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet::agent {

inline constexpr absl::Duration kDefaultExecTimeout = absl::Hours(1);
inline constexpr absl::Duration kDefaultKernelBuildTimeout = absl::Hours(3);
inline constexpr absl::Duration kDefaultKernelInstallTimeout = absl::Minutes(30);
inline constexpr absl::Duration kDefaultTestTimeout = absl::Hours(6);

class CommandManager {
 public:
  struct Options {
    std::string work_dir;  // default working directory of commands
    absl::Duration kill_grace = absl::Seconds(10);
    // Reboot steps reboot the machine for real only when allowed (guest images allow it).
    bool allow_reboot = false;
    // Reboots the machine; returns only on failure. Tests replace it.
    std::function<absl::Status()> reboot;
    // Kernel steps: their work directory (git cache, build dirs), the controller's artifact
    // store, and the host's name (recorded as a build's builder).
    std::string kernel_dir;
    kfleet::v1::ArtifactService::StubInterface* artifacts = nullptr;
    std::string host_name;
    // Test steps: their work directories (TESTS_DIR/COMMAND_ID, removed when the step ends; the
    // result files are uploaded as artifacts) and TESTS_DIR/cache (fstests trees cloned from git,
    // kept). Empty: WORK_DIR/tests.
    std::string tests_dir;
    // Per-command memory cgroups (agent/exec/cgroup.h); null or mode none: rusage only.
    const CgroupManager* cgroups = nullptr;
    // Called once per command that ran here, after its CommandFinished is in the outbox (or could
    // not be put there), on the command's own thread, with no lock of the manager held. Not called
    // for commands RecoverInterrupted reports. Null: none.
    std::function<void(const std::string& command_id, const kfleet::v1::CommandResult& result)>
        on_finished;
  };
  CommandManager(CommandBook* book, Outbox* outbox, Options options);
  // Cancels what still runs and waits for it.
  ~CommandManager();

  // Reports the commands a previous run of the agent left unfinished as lost (INFRA_ERROR) and
  // kills what is left of their process groups. Call once, before the first session.
  absl::Status RecoverInterrupted();

  // A Command from the controller. A command seen before is ignored (the controller resends until
  // it sees Accepted). Thread-safe.
  void OnCommand(const kfleet::v1::Command& command);
  // A command this agent made itself (a scheduled run), run like the controller's: recorded as
  // accepted, then `announce` (its ScheduleRunStarted) goes to the outbox before CommandAccepted
  // and everything else of the command. OK: it runs, and ends with CommandFinished and
  // on_finished. AlreadyExists if the id was seen before; another error if it could not be
  // recorded (nothing runs then). Thread-safe.
  absl::Status StartLocal(const kfleet::v1::Command& command, kfleet::v1::SequencedItem announce);
  // A Cancel from the controller; unknown or ended commands are ignored. Thread-safe.
  void OnCancel(const kfleet::v1::Cancel& cancel);

  // Cancels every running command with `reason` and waits until all have reported.
  void CancelAll(const std::string& reason);
  int running() const;

  // A kernel log record: appended to the `kmsg` stream of every command running now. Thread-safe.
  void OnKernelRecord(absl::string_view line);
  // The command a kernel event belongs to, or "": only ever a command this agent accepted. An OOM
  // victim by its cgroup (oom.task_memcg) if that is one of our commands' (running or ended; other
  // agents on the machine may share our parent cgroup), else by process ancestry (the victim's,
  // or the pid a report names, within a running command's process group or below its leader); a
  // report naming no such process goes to the command running at the time if there is exactly
  // one, unless the pid it names is a live userspace process (someone else's). Records OOM kills
  // against the command for its result (hosts without cgroups). Thread-safe.
  std::string AttributeEvent(const kfleet::v1::KernelEvent& event);

 private:
  struct Running {
    std::unique_ptr<Process> process;  // null until started
    bool cancel_before_start = false;
    std::string cancel_reason;
    std::thread thread;
    // The command's output; shared with the kernel log's thread, which writes outside mu_.
    std::shared_ptr<OutputSink> sink;
    pid_t pid = 0;            // the current phase's leader (and process group), 0 between
    uint32_t oom_events = 0;  // OOM kill events attributed to it
    std::set<pid_t> oom_victims;
  };
  // Records `command` as accepted (after `announce`, if set) and starts its thread.
  absl::Status Admit(const kfleet::v1::Command& command, kfleet::v1::SequencedItem* announce);
  void Run(kfleet::v1::Command command);
  // The reboot step: reports it started, waits (briefly) until the controller has that, records
  // the command as done (the controller completes it when the host registers with a new boot id),
  // syncs and reboots. Returns a result only if it could not reboot.
  kfleet::v1::CommandResult Reboot(const std::string& command_id);
  absl::Status Report(kfleet::v1::SequencedItem item);
  // A step run in phases (kernel and test steps): reports it started and returns what runs each
  // phase, cancellable and within one deadline for the whole step (the step's timeout, else
  // `default_timeout`).
  using PhaseRunner = std::function<kfleet::v1::CommandResult(const RunSpec&, OutputSink*)>;
  PhaseRunner StartPhasedStep(const std::string& id, absl::Duration default_timeout,
                              const std::string& step_timeout, CommandCgroup* cgroup);
  // kernel_build and kernel_install (agent/kernel/kernel_steps.h), phase by phase.
  kfleet::v1::CommandResult RunKernelStep(const kfleet::v1::Command& command, OutputSink* sink,
                                          CommandCgroup* cgroup);
  // The test step (agent/suites/test_runner.h): each test's result reported as it ends.
  kfleet::v1::CommandResult RunTestCommand(const kfleet::v1::Command& command, OutputSink* sink,
                                           CommandCgroup* cgroup);
  // Runs one process of command `id` (an exec step, or a phase of a kernel or test step),
  // recorded for crash recovery and cancellable; CANCELLED without starting it if the command was
  // cancelled before. `on_started`, if set, is called with its pid once it runs.
  kfleet::v1::CommandResult RunPhase(const std::string& id, RunSpec spec, OutputSink* sink,
                                     const std::function<void(pid_t)>& on_started = nullptr);
  // Where the kernel's OOM events say more than the result (no cgroup): OOM kills and whether
  // the command's own process was the victim.
  void AddOomEvents(const std::string& id, kfleet::v1::CommandResult* result);
  // The running command whose process `pid` is, or belongs under; "" if none.
  std::string CommandOfPid(pid_t pid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  CommandBook* book_;
  Outbox* outbox_;
  const Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Running>> running_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> done_threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_COMMANDS_COMMAND_MANAGER_H_

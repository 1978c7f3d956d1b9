// Runs the commands the controller gives: records each as accepted before anything else, runs it
// in its own process group, streams its output into the outbox, and reports Accepted, Started and
// Finished as sequenced outbox items. Commands interrupted by an agent crash are reported once, as
// lost, and never run again.
#ifndef KFLEET_AGENT_COMMANDS_COMMAND_MANAGER_H_
#define KFLEET_AGENT_COMMANDS_COMMAND_MANAGER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/commands/command_book.h"
#include "agent/exec/process.h"
#include "agent/outbox/outbox.h"
#include "kfleet/v1/agent.pb.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet::agent {

inline constexpr absl::Duration kDefaultExecTimeout = absl::Hours(1);
inline constexpr absl::Duration kDefaultKernelBuildTimeout = absl::Hours(3);
inline constexpr absl::Duration kDefaultKernelInstallTimeout = absl::Minutes(30);

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
  // A Cancel from the controller; unknown or ended commands are ignored. Thread-safe.
  void OnCancel(const kfleet::v1::Cancel& cancel);

  // Cancels every running command with `reason` and waits until all have reported.
  void CancelAll(const std::string& reason);
  int running() const;

 private:
  struct Running {
    std::unique_ptr<Process> process;  // null until started
    bool cancel_before_start = false;
    std::string cancel_reason;
    std::thread thread;
  };
  void Run(kfleet::v1::Command command);
  // The reboot step: reports it started, waits (briefly) until the controller has that, records
  // the command as done (the controller completes it when the host registers with a new boot id),
  // syncs and reboots. Returns a result only if it could not reboot.
  kfleet::v1::CommandResult Reboot(const std::string& command_id);
  absl::Status Report(kfleet::v1::SequencedItem item);
  // kernel_build and kernel_install (agent/kernel/kernel_steps.h), phase by phase.
  kfleet::v1::CommandResult RunKernelStep(const kfleet::v1::Command& command, OutputSink* sink);
  // Runs one process of command `id` (an exec step, or a phase of a kernel step), recorded for
  // crash recovery and cancellable; CANCELLED without starting it if the command was cancelled
  // before. `on_started`, if set, is called with its pid once it runs.
  kfleet::v1::CommandResult RunPhase(const std::string& id, RunSpec spec, OutputSink* sink,
                                     const std::function<void(pid_t)>& on_started = nullptr);

  CommandBook* book_;
  Outbox* outbox_;
  const Options options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Running>> running_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> done_threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_COMMANDS_COMMAND_MANAGER_H_

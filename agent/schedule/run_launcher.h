// How the schedule runner starts a run: the agent's implementation hands a command to its
// CommandManager (agent/commands/scheduled_run_launcher.h); tests record the calls.
#ifndef KFLEET_AGENT_SCHEDULE_RUN_LAUNCHER_H_
#define KFLEET_AGENT_SCHEDULE_RUN_LAUNCHER_H_

#include "absl/status/status.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::agent {

class RunLauncher {
 public:
  virtual ~RunLauncher() = default;

  // Starts one run of `spec` as command `run.command_id()`, reporting `run` before any item of the
  // command itself. OK: the command exists, and its end will be reported to
  // ScheduleRunner::OnRunFinished (even if it could not start its process). An error: nothing was
  // recorded and no end will be reported; the runner counts the run as ended at once.
  // Called on the runner's thread, without its lock held, so it may block briefly (fsyncs).
  virtual absl::Status Launch(const kfleet::v1::ScheduleSpec& spec,
                              const kfleet::v1::ScheduleRunStarted& run) = 0;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SCHEDULE_RUN_LAUNCHER_H_

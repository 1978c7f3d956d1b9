// The agent's RunLauncher: a scheduled run becomes an ordinary command of the CommandManager (its
// own process group and cgroup, logs, result), announced by ScheduleRunStarted in the outbox.
#ifndef KFLEET_AGENT_COMMANDS_SCHEDULED_RUN_LAUNCHER_H_
#define KFLEET_AGENT_COMMANDS_SCHEDULED_RUN_LAUNCHER_H_

#include "absl/status/status.h"
#include "agent/commands/command_manager.h"
#include "agent/schedule/run_launcher.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::agent {

class ScheduledRunLauncher final : public RunLauncher {
 public:
  // `commands` must outlive this object.
  explicit ScheduledRunLauncher(CommandManager* commands) : commands_(commands) {}

  // The run's command is the exec step ScheduledRunCommand makes; `run` goes to the outbox after
  // the command is recorded as accepted and before CommandAccepted.
  absl::Status Launch(const kfleet::v1::ScheduleSpec& spec,
                      const kfleet::v1::ScheduleRunStarted& run) override;

 private:
  CommandManager* commands_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_COMMANDS_SCHEDULED_RUN_LAUNCHER_H_

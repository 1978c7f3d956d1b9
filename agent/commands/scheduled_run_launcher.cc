#include "agent/commands/scheduled_run_launcher.h"

#include "agent/schedule/schedule_spec.h"

namespace kfleet::agent {

absl::Status ScheduledRunLauncher::Launch(const v1::ScheduleSpec& spec,
                                          const v1::ScheduleRunStarted& run) {
  v1::SequencedItem announce;
  *announce.mutable_schedule_run() = run;
  return commands_->StartLocal(ScheduledRunCommand(spec, run.command_id()), std::move(announce));
}

}  // namespace kfleet::agent

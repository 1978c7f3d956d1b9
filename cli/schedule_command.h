// `kctl schedule`: recurring commands run by the hosts' agents (docs/kctl.md, "kctl schedule").
#ifndef KFLEET_CLI_SCHEDULE_COMMAND_H_
#define KFLEET_CLI_SCHEDULE_COMMAND_H_

#include "absl/status/statusor.h"
#include "cli/args.h"
#include "cli/command_spec.h"
#include "cli/context.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec ScheduleCommand();

// The schedule `kctl schedule add NAME ... -- ARGV` asks for. InvalidArgument names the flag
// and the fix: a bad name, no or two host selectors, a bad or out-of-range --every-after,
// --jitter, --timeout or --memory-max, an empty command.
absl::StatusOr<v1::Schedule> BuildSchedule(const Invocation& inv);

// `kctl schedule runs NAME [--host H] [--limit N] [-f]` (schedule_runs.cc).
absl::StatusOr<int> RunScheduleRuns(const Invocation& inv, Context& ctx);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_SCHEDULE_COMMAND_H_

// `kctl logs (JOB | COMMAND) [-f] [--stream S]`: a command's log bytes exactly as stored, or a
// job's lines prefixed by host.
#ifndef KFLEET_CLI_LOGS_COMMAND_H_
#define KFLEET_CLI_LOGS_COMMAND_H_

#include "absl/status/statusor.h"
#include "cli/args.h"
#include "cli/command_spec.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec LogsCommand();

// The TailLogs request for `invocation`: "j-..." is a job, "c-..." a command.
absl::StatusOr<v1::TailLogsRequest> BuildLogsRequest(const Invocation& invocation);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_LOGS_COMMAND_H_

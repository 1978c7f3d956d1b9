// `kctl exec`: run a command on hosts, stream each host's output prefixed by its name, print a
// verdict per host and exit with the job's verdict.
#ifndef KFLEET_CLI_EXEC_COMMAND_H_
#define KFLEET_CLI_EXEC_COMMAND_H_

#include "absl/status/statusor.h"
#include "cli/args.h"
#include "cli/command_spec.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec ExecCommand();

// The job `kctl exec` submits for `invocation`: one exec step. Errors are usage errors.
absl::StatusOr<v1::JobSpec> BuildExecJob(const Invocation& invocation);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_EXEC_COMMAND_H_

// `kctl jobs`, `kctl job ID [--watch]` and `kctl cancel ID`.
#ifndef KFLEET_CLI_JOBS_COMMAND_H_
#define KFLEET_CLI_JOBS_COMMAND_H_

#include <string>

#include "cli/command_spec.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec JobsCommand();
CommandSpec JobCommand();
CommandSpec CancelCommand();

// What `kctl cancel` prints for the job CancelJob returned.
std::string DescribeCancel(const v1::Job& job);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_JOBS_COMMAND_H_

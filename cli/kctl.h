// kctl from parsed words to exit code: parses, answers help and version, resolves and connects to
// the controller, runs the command and reports its errors. main() only wraps this.
#ifndef KFLEET_CLI_KCTL_H_
#define KFLEET_CLI_KCTL_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/command_spec.h"
#include "cli/config.h"
#include "cli/context.h"
#include "cli/fleet_client.h"

namespace kfleet::cli {

// Every command, in the order the help lists them.
std::vector<CommandSpec> AllCommands();

// Runs kctl with `args` (argv without the program name) and returns its exit code. Errors are
// printed to io.err as "kctl: ...".
int RunKctl(const std::vector<std::string>& args, Io& io, const EnvLookup& env,
            absl::Duration rpc_timeout = kDefaultRpcTimeout);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_KCTL_H_

// `kctl top`: a live table of hosts: memory, load, pressure (PSI), OOM kills and what they run.
#ifndef KFLEET_CLI_TOP_COMMAND_H_
#define KFLEET_CLI_TOP_COMMAND_H_

#include "cli/command_spec.h"

namespace kfleet::cli {

CommandSpec TopCommand();

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_TOP_COMMAND_H_

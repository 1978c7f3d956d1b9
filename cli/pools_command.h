// `kctl pools`, `kctl bringup POOL`, `kctl destroy HOST|POOL`, `kctl reboot`: guests and their
// pools.
#ifndef KFLEET_CLI_POOLS_COMMAND_H_
#define KFLEET_CLI_POOLS_COMMAND_H_

#include <string>

#include "absl/time/time.h"
#include "cli/command_spec.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec PoolsCommand();
CommandSpec BringupCommand();
CommandSpec DestroyCommand();
CommandSpec RebootCommand();

// One row a pool: NAME PROVIDER IMAGE CPUS MEMORY SIZE(min..max) GUESTS WAITING, then its guests.
std::string RenderPools(const v1::ListPoolsResponse& pools, absl::Time now);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_POOLS_COMMAND_H_

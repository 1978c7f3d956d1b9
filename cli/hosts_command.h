// `kctl hosts`: the fleet's hosts as a table or JSON; `kctl hosts revoke NAME`: revokes a host's
// certificates.
#ifndef KFLEET_CLI_HOSTS_COMMAND_H_
#define KFLEET_CLI_HOSTS_COMMAND_H_

#include <string>

#include "absl/time/time.h"
#include "cli/command_spec.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec HostsCommand();

// NAME STATE KIND LABELS KERNEL LAST-SEEN, sorted by name (KIND: builder or test); `wide` adds
// ID CPUS MEMORY AGENT OS.
std::string RenderHostsTable(const v1::ListHostsResponse& hosts, bool wide, absl::Time now);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_HOSTS_COMMAND_H_

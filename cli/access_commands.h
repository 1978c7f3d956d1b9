// `kctl token create`, `kctl audit` and `kctl whoami`, and the revocation that `kctl user revoke`
// and `kctl hosts revoke` share: the AccessService commands other than user create.
#ifndef KFLEET_CLI_ACCESS_COMMANDS_H_
#define KFLEET_CLI_ACCESS_COMMANDS_H_

#include <string>

#include "absl/status/statusor.h"
#include "cli/args.h"
#include "cli/command_spec.h"
#include "cli/context.h"

namespace kfleet::cli {

CommandSpec TokenCommand();
CommandSpec AuditCommand();
CommandSpec WhoAmICommand();

enum class RevokeKind { kUser, kHost };

// Revokes the certificates of user or host `name`, ends its sessions and prints what was revoked
// (or the RevokeResponse with -o json).
absl::StatusOr<int> RunRevoke(RevokeKind kind, const std::string& name, OutputFormat output,
                              Context& ctx);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_ACCESS_COMMANDS_H_

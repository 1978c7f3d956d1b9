// `kctl boot`: build (or reuse) a kernel, install it on hosts, reboot into it, check that it is
// the one running, and optionally run a command on it.
#ifndef KFLEET_CLI_BOOT_COMMAND_H_
#define KFLEET_CLI_BOOT_COMMAND_H_

#include <string>

#include "absl/status/statusor.h"
#include "cli/args.h"
#include "cli/command_spec.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec BootCommand();

// The job `kctl boot` submits for `invocation`: kernel_build, kernel_install, reboot and, when
// ARGV is given, exec. Local paths are made absolute relative to `cwd`. Errors are usage errors.
absl::StatusOr<v1::JobSpec> BuildBootJob(const Invocation& invocation, const std::string& cwd);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_BOOT_COMMAND_H_

// Runs a short host tool for the provider (qemu-img, a qemu probe) and collects its output.
#ifndef KFLEET_CONTROLLER_PROVISION_HOST_COMMAND_H_
#define KFLEET_CONTROLLER_PROVISION_HOST_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kfleet::controller::provision {

struct HostCommandResult {
  int exit_code = -1;    // the exit status; -1 if the command was killed by a signal
  bool stopped = false;  // we killed it: `timeout` passed or `until` was seen
  std::string output;    // stdout and stderr as they interleaved; at most the last 64 KiB
};

// Runs argv (argv[0] looked up in PATH) in its own process group with stdin from /dev/null. The
// group is SIGKILLed when `timeout` passes or, if `until` is not empty, as soon as the output
// contains `until`. Errors: InvalidArgument for an empty argv, NotFound if argv[0] cannot be run,
// and the failed system call's status otherwise; a command that fails is not an error (see
// exit_code). Thread-safe (posix_spawn).
absl::StatusOr<HostCommandResult> RunHostCommand(const std::vector<std::string>& argv,
                                                 absl::Duration timeout,
                                                 absl::string_view until = {});

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_HOST_COMMAND_H_

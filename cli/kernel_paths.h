// Local paths in a job's kernel source, made absolute before the job is submitted: the builder
// (the controller's own machine in the default setup) does not run in kctl's directory.
#ifndef KFLEET_CLI_KERNEL_PATHS_H_
#define KFLEET_CLI_KERNEL_PATHS_H_

#include <string>

#include "kfleet/v1/common.pb.h"

namespace kfleet::cli {

// Rewrites, relative to the absolute directory `cwd`: `kernel.tree` when it is a relative path
// naming a directory there, and each relative BASE or FRAGMENT of `kernel.config` (split on '+')
// naming a regular file there. Anything else (absolute paths, git URLs, make targets such as
// defconfig, fragments of the tree such as kvm_guest.config) is left as it is.
void MakeKernelPathsAbsolute(v1::KernelSource& kernel, const std::string& cwd);

// The current directory, or "" when it cannot be known (then nothing is rewritten).
std::string CurrentDirectory();

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_KERNEL_PATHS_H_

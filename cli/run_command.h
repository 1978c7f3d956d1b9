// `kctl run -f FILE`: submit the job a job spec file describes, follow it, print its report and
// exit with its verdict.
#ifndef KFLEET_CLI_RUN_COMMAND_H_
#define KFLEET_CLI_RUN_COMMAND_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/command_spec.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec RunCommand();

// The job in `yaml_text` (from `file_name`), its local kernel paths made absolute relative to
// `cwd` (kernel_paths.h). Errors are INVALID_ARGUMENT with one error per line, as ParseJobSpec
// reports them.
absl::StatusOr<v1::JobSpec> LoadJobSpec(absl::string_view yaml_text, absl::string_view file_name,
                                        const std::string& cwd);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_RUN_COMMAND_H_

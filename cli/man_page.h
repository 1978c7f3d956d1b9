// kctl(1): the man page, rendered from the same command tables as kctl's help (command_spec.h,
// help.h), so that the two never disagree. `kctl --man` prints it.
#ifndef KFLEET_CLI_MAN_PAGE_H_
#define KFLEET_CLI_MAN_PAGE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "cli/command_spec.h"

namespace kfleet::cli {

// The page in roff (man(7) macros): NAME, SYNOPSIS and DESCRIPTION as `kctl --help` has them,
// GLOBAL OPTIONS, COMMANDS with one subsection per command (synopsis, description, options, exit
// status, examples), ENVIRONMENT, FILES, EXIT STATUS and SEE ALSO.
std::string RenderKctlManPage(const std::vector<CommandSpec>& commands, absl::string_view version);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_MAN_PAGE_H_

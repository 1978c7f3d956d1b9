// kctl's help text: an overview of every command, and a man-page-like page per command (synopsis,
// description, options, exit status, examples).
#ifndef KFLEET_CLI_HELP_H_
#define KFLEET_CLI_HELP_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "cli/command_spec.h"

namespace kfleet::cli {

// `kctl --help`: usage, the commands with their summaries, global flags, environment, files, exit
// status.
std::string RenderOverview(const std::vector<CommandSpec>& commands);

// `kctl COMMAND --help`.
std::string RenderCommandHelp(const CommandSpec& command);

// Word-wraps `text` to `width` columns, each line indented by `indent`. Paragraphs are separated by
// blank lines; lines that start with a space are kept as they are (examples, lists).
std::string Wrap(absl::string_view text, size_t indent, size_t width = 80);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_HELP_H_

// Parses kctl's command line: global flags (before or after the command name), the command, its
// flags, its positional arguments and, after "--", a command's argv.
#ifndef KFLEET_CLI_ARGS_H_
#define KFLEET_CLI_ARGS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/command_spec.h"

namespace kfleet::cli {

enum class OutputFormat { kTable, kWide, kJson };

struct GlobalOptions {
  std::optional<std::string> controller;  // --controller, when given
  std::optional<std::string> config;      // --config, when given: the kctl.yaml to read
  bool insecure = false;                  // --insecure was given
  OutputFormat output = OutputFormat::kTable;
};

struct Invocation {
  GlobalOptions globals;
  const CommandSpec* command = nullptr;  // null when no command was named
  bool help = false;                     // -h/--help was given
  // Command flag values by long name, in command-line order; a boolean flag has one "" per use.
  std::map<std::string, std::vector<std::string>> flags;
  std::vector<std::string> args;  // positional arguments
  std::vector<std::string> argv;  // everything after "--"
  bool has_argv = false;          // "--" was given

  bool Has(absl::string_view flag) const;
  // The last value of `flag`, or `fallback` when it was not given.
  std::string Get(absl::string_view flag, absl::string_view fallback = "") const;
  const std::vector<std::string>& GetAll(absl::string_view flag) const;
};

// Parses `args` (argv without the program name) against `commands`, which must outlive the result.
// Errors are InvalidArgument with a message that names the problem, suggests a fix where one is
// likely and points at the help.
absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<CommandSpec>& commands);

// "table", "wide" or "json".
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_ARGS_H_

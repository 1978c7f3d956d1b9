// What a kctl command accepts and how its help reads. Each command's file returns its spec; kctl.cc
// lists them, ParseArgs checks input against them and help.cc renders them.
#ifndef KFLEET_CLI_COMMAND_SPEC_H_
#define KFLEET_CLI_COMMAND_SPEC_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet::cli {

struct Invocation;
struct Context;

struct FlagSpec {
  std::string name;        // long name without the dashes: "host" for --host
  char short_name = 0;     // 'l' for -l; 0 for none
  std::string value_name;  // "NAME" for --host NAME; empty for a boolean flag
  std::string help;        // one or more sentences
  bool repeatable = false;
  bool hidden = false;  // accepted, but not documented yet
};

// Runs a parsed invocation and returns the exit code, or an error that kctl prints and maps with
// ExitCodeForStatus.
using RunFn = absl::StatusOr<int> (*)(const Invocation& invocation, Context& context);

struct CommandSpec {
  std::string name;
  std::string synopsis;     // the usage after "kctl ", e.g. "job ID [-w]"
  std::string summary;      // one line for the command list
  std::string description;  // paragraphs separated by blank lines
  std::vector<FlagSpec> flags;
  int min_args = 0;  // positional arguments (before any "--")
  int max_args = 0;
  std::string args_hint;       // what the positional arguments are, for error messages
  bool takes_argv = false;     // "-- ARGV..." may follow
  bool argv_optional = false;  // with takes_argv: "-- ARGV..." may also be left out
  std::string argv_example;    // with takes_argv, for errors: "--all -- uname -r"
  std::vector<std::pair<int, std::string>> exit_codes;  // documented in help
  std::string examples;                                 // shell lines, with "# comments"
  RunFn run = nullptr;  // null for commands kctl.cc handles itself (help, version)
  bool needs_controller = true;
};

// --controller, --config, --insecure, -o/--output, -h/--help: accepted before or after the command
// name.
const std::vector<FlagSpec>& GlobalFlags();

// The flag of `command` (or a global flag when `command` is null or does not know it) named
// `name` (long, without dashes) or, if `name` is one character, with that short name.
const FlagSpec* FindFlag(const CommandSpec* command, absl::string_view name);

// The meaning of an exit code, as the help and docs explain it.
std::string ExitCodeMeaning(int code);

// Commands in the command-line contract (DESIGN.md) that this version does not have yet.
const std::vector<std::string>& PlannedCommands();

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_COMMAND_SPEC_H_

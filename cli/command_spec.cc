#include "cli/command_spec.h"

#include "cli/exit_codes.h"

namespace kfleet::cli {
namespace {

const FlagSpec* FindIn(const std::vector<FlagSpec>& flags, absl::string_view name) {
  for (const FlagSpec& f : flags) {
    if (name.size() == 1 ? f.short_name == name[0] : f.name == name) return &f;
  }
  return nullptr;
}

}  // namespace

const std::vector<FlagSpec>& GlobalFlags() {
  static const auto* const kFlags = new std::vector<FlagSpec>{
      {.name = "controller",
       .value_name = "HOST:PORT",
       .help = "The controller to talk to. Default: $KFLEET_CONTROLLER, else `controller:` in "
               "the config file, else 127.0.0.1:7400."},
      {.name = "config",
       .value_name = "FILE",
       .help = "The config file to read: the controller's address and the TLS files (ca, cert, "
               "key), such as the STATE_DIR/kctl.yaml the controller writes on first start. "
               "Default: $KFLEET_CONFIG, else ~/.config/kfleet/kctl.yaml. For kctl boot, whose "
               "own --config names a kernel configuration, write it before the command name."},
      {.name = "insecure",
       .help = "Plaintext gRPC, for a controller on loopback only. Also KFLEET_INSECURE=1 or "
               "`insecure: true` in the config file."},
      {.name = "output",
       .short_name = 'o',
       .value_name = "FORMAT",
       .help = "table (the default), wide (more columns) or json."},
      {.name = "help", .short_name = 'h', .help = "Show help and exit."},
  };
  return *kFlags;
}

const FlagSpec* FindFlag(const CommandSpec* command, absl::string_view name) {
  if (command != nullptr) {
    if (const FlagSpec* f = FindIn(command->flags, name)) return f;
  }
  return FindIn(GlobalFlags(), name);
}

std::string ExitCodeMeaning(int code) {
  switch (code) {
    case kExitOk:
      return "success; for a job: it passed";
    case kExitFail:
      return "the job failed: a command, kernel or test failed";
    case kExitUsage:
      return "usage error or bad input";
    case kExitUnreachable:
      return "the controller cannot be reached, or a request to it failed";
    case kExitBootFailed:
      return "the requested kernel did not boot (BOOT_FAILED)";
    case kExitTimeout:
      return "a step ran past its timeout (TIMEOUT)";
    case kExitInfraError:
      return "an infrastructure error: agent lost, provider failed, disk full (INFRA_ERROR)";
    case kExitCancelled:
      return "the job was cancelled (CANCELLED)";
    case kExitNotFound:
      return "not found: unknown host, job or command id";
    case kExitDenied:
      return "refused: not authenticated, or the role does not allow it";
    case kExitNothingRan:
      return "a test step ran no test: every test was skipped (NOTHING_RAN)";
    default:
      return "";
  }
}

const std::vector<std::string>& PlannedCommands() {
  static const auto* const kPlanned = new std::vector<std::string>{"pki"};
  return *kPlanned;
}

}  // namespace kfleet::cli

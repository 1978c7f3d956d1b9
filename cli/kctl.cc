#include "cli/kctl.h"

#include "absl/strings/str_cat.h"
#include "cli/access_commands.h"
#include "cli/args.h"
#include "cli/artifacts_command.h"
#include "cli/boot_command.h"
#include "cli/events_command.h"
#include "cli/exec_command.h"
#include "cli/exit_codes.h"
#include "cli/expunges_command.h"
#include "cli/help.h"
#include "cli/hosts_command.h"
#include "cli/jobs_command.h"
#include "cli/logs_command.h"
#include "cli/man_page.h"
#include "cli/pools_command.h"
#include "cli/results_command.h"
#include "cli/run_command.h"
#include "cli/schedule_command.h"
#include "cli/suggest.h"
#include "cli/top_command.h"
#include "cli/user_command.h"
#include "common/credentials.h"

#ifndef KFLEET_VERSION
#define KFLEET_VERSION "unknown"
#endif

namespace kfleet::cli {
namespace {

CommandSpec HelpCommand() {
  return CommandSpec{
      .name = "help",
      .synopsis = "help [COMMAND]",
      .summary = "show help for kctl or for one command",
      .description =
          "Without COMMAND, lists the commands, global flags, environment variables, "
          "the config file and the exit codes. With COMMAND, shows its page, as "
          "`kctl COMMAND --help` does.",
      .max_args = 1,
      .exit_codes = {{kExitOk, "help was shown"}, {kExitUsage, "no such command"}},
      .examples = "kctl help\nkctl help exec\nkctl exec --help\n",
      .needs_controller = false,
  };
}

CommandSpec VersionCommand() {
  return CommandSpec{
      .name = "version",
      .synopsis = "version [-o json]",
      .summary = "print kctl's version",
      .description = "Prints \"kctl VERSION\"; with -o json, {\"version\": \"VERSION\"}.",
      .exit_codes = {{kExitOk, ""}},
      .examples = "kctl version\n",
      .needs_controller = false,
  };
}

int Fail(Io& io, const absl::Status& status) {
  io.err << "kctl: " << status.message() << "\n";
  io.err.flush();
  return ExitCodeForStatus(status);
}

int ShowHelp(const Invocation& inv, const std::vector<CommandSpec>& commands, Io& io) {
  const CommandSpec* topic = inv.command;
  if (topic != nullptr && topic->name == "help") {
    topic = nullptr;
    if (!inv.args.empty()) {
      std::vector<std::string> names;
      for (const CommandSpec& c : commands) {
        if (c.name == inv.args[0]) topic = &c;
        names.push_back(c.name);
      }
      if (topic == nullptr) {
        return Fail(io, absl::InvalidArgumentError(
                            absl::StrCat("help: unknown command \"", inv.args[0], "\"",
                                         DidYouMean(inv.args[0], names), "; see kctl --help")));
      }
    }
  }
  io.out << (topic ? RenderCommandHelp(*topic) : RenderOverview(commands));
  return kExitOk;
}

absl::StatusOr<std::unique_ptr<FleetClient>> Connect(const GlobalOptions& flags,
                                                     const EnvLookup& env,
                                                     absl::Duration rpc_timeout) {
  absl::StatusOr<Connection> connection = ResolveConnection(flags, env);
  if (!connection.ok()) return connection.status();
  absl::StatusOr<TransportSecurity> security = TransportFor(*connection);
  if (!security.ok()) return security.status();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(*security, connection->controller);
  if (!channel.ok()) {
    return WithExitCode(
        absl::Status(channel.status().code(),
                     absl::StrCat("controller ", connection->controller, " (from ",
                                  connection->source, "): ", channel.status().message())),
        kExitUsage);
  }
  return std::make_unique<FleetClient>(*std::move(channel), connection->controller, rpc_timeout,
                                       connection->server_name);
}

}  // namespace

std::vector<CommandSpec> AllCommands() {
  return {HostsCommand(),    ExecCommand(),      RunCommand(),    BootCommand(),
          JobsCommand(),     JobCommand(),       LogsCommand(),   ResultsCommand(),
          ExpungesCommand(), ArtifactsCommand(), CancelCommand(), RebootCommand(),
          EventsCommand(),   ScheduleCommand(),  TopCommand(),    PoolsCommand(),
          BringupCommand(),  DestroyCommand(),   TokenCommand(),  UserCommand(),
          AuditCommand(),    WhoAmICommand(),    HelpCommand(),   VersionCommand()};
}

int RunKctl(const std::vector<std::string>& args, Io& io, const EnvLookup& env,
            absl::Duration rpc_timeout) {
  const std::vector<CommandSpec> commands = AllCommands();
  if (args.size() == 1 && args[0] == "--man") {  // kctl(1), as cmake/man.cmake installs it
    io.out << RenderKctlManPage(commands, KFLEET_VERSION);
    return kExitOk;
  }
  absl::StatusOr<Invocation> inv = ParseArgs(args, commands);
  if (!inv.ok()) return Fail(io, inv.status());
  if (inv->help || (inv->command != nullptr && inv->command->name == "help")) {
    return ShowHelp(*inv, commands, io);
  }
  if (inv->command == nullptr) {
    return Fail(io, absl::InvalidArgumentError(
                        "no command given; kctl --help lists them (e.g. kctl hosts)"));
  }
  if (inv->command->name == "version") {
    if (inv->globals.output == OutputFormat::kJson) {
      io.out << "{\"version\": \"" << KFLEET_VERSION << "\"}\n";
    } else {
      io.out << "kctl " << KFLEET_VERSION << "\n";
    }
    return kExitOk;
  }

  Context context(io, [&]() { return Connect(inv->globals, env, rpc_timeout); });
  absl::StatusOr<int> code = inv->command->run(*inv, context);
  if (!code.ok()) return Fail(io, code.status());
  return *code;
}

}  // namespace kfleet::cli

#include "cli/logs_command.h"

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/log_printer.h"
#include "cli/reconnector.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

absl::StatusOr<int> RunLogs(const Invocation& inv, Context& ctx) {
  absl::StatusOr<v1::TailLogsRequest> request = BuildLogsRequest(inv);
  if (!request.ok()) return request.status();
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  bool is_job = request->target_case() == v1::TailLogsRequest::kJobId;

  // With one stream chosen, its bytes go to stdout whatever it is, so `> file` catches them.
  // Otherwise the command's stderr goes to kctl's stderr, as it went to the command's.
  bool stderr_to_err = request->streams_size() != 1;
  LogPrinter::Mode mode = inv.globals.output == OutputFormat::kJson ? LogPrinter::Mode::kJson
                          : is_job                                  ? LogPrinter::Mode::kPrefixed
                                                                    : LogPrinter::Mode::kRaw;
  LogPrinter printer(ctx.io, mode, stderr_to_err);
  if (is_job && mode == LogPrinter::Mode::kPrefixed) {
    // Learns the host names first so that prefixes line up from the first line.
    absl::StatusOr<v1::Job> job = fleet->GetJob(request->job_id());
    if (!job.ok()) return job.status();
    for (const v1::CommandInfo& c : job->commands()) printer.AddHost(c.host_name());
  }
  // Without -f there is nothing to wait for; with it, a controller restart is waited out.
  Reconnector reconnector(ctx.io, fleet->address(),
                          request->follow() ? kReconnectWindow : absl::ZeroDuration());
  if (is_job && mode == LogPrinter::Mode::kPrefixed) reconnector.Connected();
  bool ended = false;
  absl::Status s = reconnector.Run([&] {
    printer.Restart();
    return fleet->TailLogs(*request, [&](const v1::LogData& d) {
      reconnector.Connected();
      ended = ended || d.end();
      return printer.Print(d);
    });
  });
  if (ended) s = absl::OkStatus();
  printer.Finish();
  if (!s.ok()) return s;
  return kExitOk;
}

}  // namespace

absl::StatusOr<v1::TailLogsRequest> BuildLogsRequest(const Invocation& inv) {
  v1::TailLogsRequest request;
  const std::string& id = inv.args[0];
  if (absl::StartsWith(id, "j-")) {
    request.set_job_id(id);
  } else if (absl::StartsWith(id, "c-")) {
    request.set_command_id(id);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "logs: \"", id,
        "\" is neither a job id (j-...) nor a command id (c-...); kctl jobs lists jobs, and "
        "kctl job ID -o wide the ids of a job's commands"));
  }
  std::set<v1::LogStream> seen;
  for (const std::string& arg : inv.GetAll("stream")) {
    for (absl::string_view name : absl::StrSplit(arg, ',')) {
      absl::StatusOr<v1::LogStream> stream = ParseLogStream(name);
      if (!stream.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("logs: --stream: ", stream.status().message()));
      }
      if (seen.insert(*stream).second) request.add_streams(*stream);
    }
  }
  request.set_follow(inv.Has("follow"));
  return request;
}

CommandSpec LogsCommand() {
  return CommandSpec{
      .name = "logs",
      .synopsis = "logs (JOB | COMMAND) [-f] [--stream stdout|stderr|console|kmsg]...",
      .summary = "print the logs of a job or of one command; -f follows them",
      .description =
          "Prints the stored logs of a command (an id starting with c-, as kctl job ID -o wide "
          "shows) or of every command of a job (an id starting with j-).\n\n"
          "For a command, kctl writes the bytes exactly as they were stored, binary data "
          "included, with nothing added: `kctl logs c-... --stream stdout > out` gives back what "
          "the command wrote to its stdout.\n\n"
          "For a job, each line is prefixed by its host's name, as kctl exec prints it; a last "
          "line without a newline is printed with one.\n\n"
          "Streams: stdout and stderr of the command (the default is both), console (the "
          "hypervisor's serial console of the host) and kmsg (the kernel log while the command "
          "ran). With exactly one --stream, everything goes to stdout; otherwise the command's "
          "stderr goes to kctl's stderr and the other streams to stdout.\n\n"
          "With -f, kctl prints what is stored, then waits for more until every command has "
          "ended, waiting up to 2 minutes for a controller that restarts. With -o json, kctl "
          "prints one LogData message per line (data in base64); with "
          "-f, the last has \"end\": true and the finished job under \"job\".",
      .flags =
          {
              {.name = "follow",
               .short_name = 'f',
               .help = "Keep printing new output until the commands end."},
              {.name = "stream",
               .value_name = "STREAM",
               .help = "Only this stream: stdout, stderr, console or kmsg (or a comma-separated "
                       "list). Default: stdout and stderr.",
               .repeatable = true},
          },
      .min_args = 1,
      .max_args = 1,
      .args_hint = "a job id (j-...) or command id (c-...), e.g. kctl logs j-3f2a9c01d4e5b677",
      .exit_codes = {{kExitOk, "the logs were printed (whatever the job's verdict)"},
                     {kExitUsage, ""},
                     {kExitUnreachable, ""},
                     {kExitNotFound, "no job or command has this id"}},
      .examples =
          "kctl logs j-3f2a9c01d4e5b677\n"
          "kctl logs -f j-3f2a9c01d4e5b677\n"
          "# one command's stdout, byte for byte\n"
          "kctl logs c-9d41e0a27b3c5f18 --stream stdout > stdout.bin\n"
          "kctl logs c-9d41e0a27b3c5f18 --stream kmsg | grep -i oom\n",
      .run = &RunLogs,
  };
}

}  // namespace kfleet::cli

#include "cli/jobs_command.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/job_view.h"
#include "cli/json.h"
#include "cli/reconnector.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

// Moves the cursor home and clears the screen: a watch redraws in place on a terminal.
constexpr char kClearScreen[] = "\x1b[H\x1b[2J";
constexpr uint32_t kMaxJobsLimit = 10000;

absl::Status PrintJson(const google::protobuf::Message& m, JsonStyle style, Io& io) {
  absl::StatusOr<std::string> json = ToJson(m, style);
  if (!json.ok()) return json.status();
  io.out << *json;
  io.out.flush();
  return absl::OkStatus();
}

absl::StatusOr<int> RunJobs(const Invocation& inv, Context& ctx) {
  uint32_t limit = 0;
  if (inv.Has("limit") &&
      (!absl::SimpleAtoi(inv.Get("limit"), &limit) || limit == 0 || limit > kMaxJobsLimit)) {
    return absl::InvalidArgumentError(absl::StrCat("jobs: --limit: \"", inv.Get("limit"),
                                                   "\" is not a number from 1 to ", kMaxJobsLimit));
  }
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  absl::StatusOr<v1::ListJobsResponse> jobs = fleet->ListJobs(limit);
  if (!jobs.ok()) return jobs.status();
  if (inv.globals.output == OutputFormat::kJson) {
    RETURN_IF_ERROR(PrintJson(*jobs, JsonStyle::kPretty, ctx.io));
    return kExitOk;
  }
  if (jobs->jobs().empty()) {
    ctx.io.err << "No jobs yet. Start one with kctl exec.\n";
    return kExitOk;
  }
  ctx.io.out << RenderJobsTable(jobs->jobs(), inv.globals.output == OutputFormat::kWide,
                                ctx.io.now(), ctx.io.tz);
  return kExitOk;
}

absl::StatusOr<int> Watch(const Invocation& inv, Context& ctx, const std::string& id) {
  bool json = inv.globals.output == OutputFormat::kJson;
  bool wide = inv.globals.output == OutputFormat::kWide;
  std::optional<v1::Job> last;
  bool first = true;
  auto show = [&](const v1::Job& job) -> absl::Status {
    last = job;
    if (json) return PrintJson(job, JsonStyle::kLine, ctx.io);
    if (ctx.io.out_is_tty) {
      ctx.io.out << kClearScreen;
    } else if (!first) {
      ctx.io.out << "\n";
    }
    first = false;
    ctx.io.out << RenderJobDetail(job, wide, ctx.io.now(), ctx.io.tz);
    ctx.io.out.flush();
    return absl::OkStatus();
  };

  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  // WatchJob starts with the job as it is, so asking again after a reconnect loses nothing.
  Reconnector reconnector(ctx.io, fleet->address());
  absl::Status s = reconnector.Run([&] {
    return fleet->WatchJob(id, [&](const v1::Job& job) {
      reconnector.Connected();
      return show(job);
    });
  });
  bool ended = last && last->state() == v1::JOB_DONE;
  if (!s.ok() && !ended) return s;
  if (!ended) {
    return WithExitCode(
        absl::UnavailableError(absl::StrCat("WatchJob: the stream ended before job ", id,
                                            " did; run kctl job ", id, " --watch again")),
        kExitUnreachable);
  }
  return ExitCodeForVerdict(last->verdict());
}

absl::StatusOr<int> RunJob(const Invocation& inv, Context& ctx) {
  const std::string& id = inv.args[0];
  if (inv.Has("watch")) return Watch(inv, ctx, id);
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  absl::StatusOr<v1::Job> job = fleet->GetJob(id);
  if (!job.ok()) return job.status();
  if (inv.globals.output == OutputFormat::kJson) {
    RETURN_IF_ERROR(PrintJson(*job, JsonStyle::kPretty, ctx.io));
    return kExitOk;
  }
  ctx.io.out << RenderJobDetail(*job, inv.globals.output == OutputFormat::kWide, ctx.io.now(),
                                ctx.io.tz);
  return kExitOk;
}

absl::StatusOr<int> RunCancel(const Invocation& inv, Context& ctx) {
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  absl::StatusOr<v1::Job> job = fleet->CancelJob(inv.args[0]);
  if (!job.ok()) return job.status();
  if (inv.globals.output == OutputFormat::kJson) {
    RETURN_IF_ERROR(PrintJson(*job, JsonStyle::kPretty, ctx.io));
    return kExitOk;
  }
  ctx.io.out << DescribeCancel(*job) << "\n";
  return kExitOk;
}

}  // namespace

std::string DescribeCancel(const v1::Job& job) {
  int cancelled = 0;
  for (const v1::CommandInfo& c : job.commands()) {
    bool was_cancelled = c.result().verdict() == v1::CANCELLED || c.result().cancelled();
    if (was_cancelled || (c.cancel_requested() && c.state() != v1::COMMAND_FINISHED)) ++cancelled;
  }
  if (cancelled == 0 && job.state() == v1::JOB_DONE) {
    return absl::StrCat("job ", job.id(), " had already ended: ", VerdictName(job.verdict()));
  }
  return absl::StrCat("cancelled job ", job.id(), ": ", cancelled,
                      cancelled == 1 ? " command" : " commands");
}

CommandSpec JobsCommand() {
  return CommandSpec{
      .name = "jobs",
      .synopsis = "jobs [--limit N] [-o table|wide|json]",
      .summary = "list jobs, newest first",
      .description =
          "Lists the newest jobs (50 unless --limit says otherwise), newest first: id, name, "
          "state (running or done), verdict (PASS, FAIL, BOOT_FAILED, TIMEOUT, INFRA_ERROR, "
          "CANCELLED, NOTHING_RAN; - while running), how many hosts, when it was created and how "
          "long ago.\n\n"
          "With -o wide, adds who submitted the job and how long it ran. With -o json, prints "
          "{\"jobs\": [...]} with the fields of the Job message.",
      .flags = {{.name = "limit", .value_name = "N", .help = "Show at most N jobs (default 50)."}},
      .exit_codes = {{kExitOk, "the jobs were listed"}, {kExitUsage, ""}, {kExitUnreachable, ""}},
      .examples =
          "kctl jobs\n"
          "kctl jobs --limit 5 -o wide\n"
          "# ids of failed jobs\n"
          "kctl jobs -o json | jq -r '.jobs[] | select(.verdict == \"FAIL\") | .id'\n",
      .run = &RunJobs,
  };
}

CommandSpec JobCommand() {
  return CommandSpec{
      .name = "job",
      .synopsis = "job ID [-w|--watch] [-o table|wide|json]",
      .summary = "show a job and its commands; --watch follows it to the end",
      .description =
          "Shows job ID: its name, state, verdict, host selector, when it was created, how long "
          "it ran and its steps; then one row per command (one step on one host): host, step "
          "number, state, verdict, exit status (or the signal that ended it), wall time, CPU time "
          "(user + system), peak memory (MAXRSS) and, when it did not pass, why.\n\n"
          "With -o wide, the table adds each command's id, for kctl logs. With -o json, prints "
          "the Job message.\n\n"
          "With --watch, kctl follows the job: on a terminal it redraws the page on every change; "
          "otherwise it prints each new state after a blank line (with -o json: one Job per "
          "line). It exits when the job ends, with the job's verdict (see EXIT STATUS), and waits "
          "up to 2 minutes for a controller that restarts meanwhile. Without --watch, kctl job "
          "exits 0 whatever the verdict.",
      .flags = {{.name = "watch",
                 .short_name = 'w',
                 .help = "Follow the job until it ends, then exit with its verdict."}},
      .min_args = 1,
      .max_args = 1,
      .args_hint = "the job ID, e.g. kctl job j-3f2a9c01d4e5b677",
      .exit_codes = {{kExitOk, "the job was shown; with --watch: it passed"},
                     {kExitFail, "with --watch: the job failed"},
                     {kExitUsage, ""},
                     {kExitUnreachable, ""},
                     {kExitBootFailed, "with --watch: BOOT_FAILED"},
                     {kExitTimeout, "with --watch: TIMEOUT"},
                     {kExitInfraError, "with --watch: INFRA_ERROR"},
                     {kExitCancelled, "with --watch: CANCELLED"},
                     {kExitNotFound, "no job has this id"},
                     {kExitNothingRan, "with --watch: NOTHING_RAN"}},
      .examples =
          "kctl job j-3f2a9c01d4e5b677\n"
          "kctl job j-3f2a9c01d4e5b677 -o wide\n"
          "kctl job j-3f2a9c01d4e5b677 --watch && echo passed\n",
      .run = &RunJob,
  };
}

CommandSpec CancelCommand() {
  return CommandSpec{
      .name = "cancel",
      .synopsis = "cancel ID",
      .summary = "cancel a job: end its running commands, skip the rest",
      .description =
          "Cancels job ID. Commands that have not started will not start; running commands are "
          "ended (SIGTERM to the process group, then SIGKILL after a grace period) and report "
          "CANCELLED. kctl prints how many commands were cancelled, or the verdict if the job had "
          "already ended, and exits 0 in both cases; it does not wait for the commands to end "
          "(kctl job ID --watch does).",
      .min_args = 1,
      .max_args = 1,
      .args_hint = "the job ID, e.g. kctl cancel j-3f2a9c01d4e5b677",
      .exit_codes = {{kExitOk, "the job was cancelled, or had already ended"},
                     {kExitUsage, ""},
                     {kExitUnreachable, ""},
                     {kExitNotFound, "no job has this id"}},
      .examples =
          "kctl cancel j-3f2a9c01d4e5b677\n"
          "# cancel, then wait for the commands to end\n"
          "kctl cancel j-3f2a9c01d4e5b677 && kctl job j-3f2a9c01d4e5b677 --watch\n",
      .run = &RunCancel,
  };
}

}  // namespace kfleet::cli

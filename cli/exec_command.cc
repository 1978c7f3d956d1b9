#include "cli/exec_command.h"

#include <algorithm>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/host_selector.h"
#include "cli/job_view.h"
#include "cli/json.h"
#include "cli/log_printer.h"
#include "cli/reconnector.h"
#include "common/duration.h"
#include "common/memory_size.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

constexpr size_t kMaxDefaultNameBytes = 64;

absl::Status ExecError(const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("exec: ", s.message()));
}

absl::StatusOr<int> RunExec(const Invocation& inv, Context& ctx) {
  absl::StatusOr<v1::JobSpec> spec = BuildExecJob(inv);
  if (!spec.ok()) return spec.status();
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  absl::StatusOr<v1::Job> submitted = fleet->SubmitJob(*spec);
  if (!submitted.ok()) return submitted.status();
  const std::string job_id = submitted->id();

  bool json = inv.globals.output == OutputFormat::kJson;
  LogPrinter printer(ctx.io, json ? LogPrinter::Mode::kJson : LogPrinter::Mode::kPrefixed,
                     /*stderr_to_err=*/true);
  std::vector<std::string> names;
  for (const v1::CommandInfo& c : submitted->commands()) {
    printer.AddHost(c.host_name());
    if (std::find(names.begin(), names.end(), c.host_name()) == names.end()) {
      names.push_back(c.host_name());
    }
  }
  if (!json) {
    ctx.io.err << "job " << job_id << ": "
               << (names.empty() ? "waiting for hosts" : absl::StrJoin(names, ", ")) << "\n";
    ctx.io.err.flush();
  }

  std::optional<v1::Job> final_job;
  v1::TailLogsRequest request;
  request.set_job_id(job_id);
  request.set_follow(true);
  // The controller answered SubmitJob, so losing it from now on means waiting for it to return.
  Reconnector reconnector(ctx.io, fleet->address());
  reconnector.Connected();
  absl::Status tail = reconnector.Run([&] {
    printer.Restart();
    return fleet->TailLogs(request, [&](const v1::LogData& data) {
      reconnector.Connected();
      if (data.end()) final_job = data.job();
      return printer.Print(data);
    });
  });
  printer.Finish();
  if (!tail.ok() && !final_job) return tail;
  if (!final_job) {
    // The stream ended without its end message: ask for the job once before giving up.
    absl::StatusOr<v1::Job> job = fleet->GetJob(job_id);
    if (!job.ok()) return job.status();
    if (job->state() != v1::JOB_DONE) {
      return WithExitCode(
          absl::UnavailableError(absl::StrCat("the log stream of job ", job_id,
                                              " ended before the job did; follow it with kctl "
                                              "logs -f ",
                                              job_id, " or kctl job ", job_id, " --watch")),
          kExitUnreachable);
    }
    final_job = *std::move(job);
    if (json) {
      absl::StatusOr<std::string> text = ToJson(*final_job, JsonStyle::kLine);
      if (!text.ok()) return text.status();
      ctx.io.out << *text;
    }
  }
  if (!json) {
    for (const v1::CommandInfo& c : final_job->commands()) {
      ctx.io.err << CommandSummary(c, "", inv.globals.output == OutputFormat::kWide) << "\n";
    }
  }
  return ExitCodeForVerdict(final_job->verdict());
}

}  // namespace

absl::StatusOr<v1::JobSpec> BuildExecJob(const Invocation& inv) {
  absl::StatusOr<v1::HostSelector> selector =
      BuildHostSelector(inv.Has("all"), inv.GetAll("host"), inv.GetAll("label"));
  if (!selector.ok()) return ExecError(selector.status());

  if (inv.Has("count")) {
    uint32_t count = 0;
    if (!absl::SimpleAtoi(inv.Get("count"), &count) || count == 0 || count > 1000) {
      return absl::InvalidArgumentError("exec: --count: expected a number from 1 to 1000");
    }
    if (selector->labels().empty()) {
      return absl::InvalidArgumentError(
          "exec: --count needs -l KEY=VALUE: it picks that many hosts carrying the labels");
    }
    selector->set_count(count);
  }
  v1::JobSpec spec;
  *spec.mutable_hosts() = *std::move(selector);
  v1::Step* step = spec.add_steps();
  if (inv.Has("timeout")) {
    std::string timeout = inv.Get("timeout");
    absl::StatusOr<absl::Duration> d = ParseDuration(timeout);
    if (!d.ok())
      return absl::InvalidArgumentError(absl::StrCat("exec: --timeout: ", d.status().message()));
    step->set_timeout(timeout);
  }
  if (inv.Has("memory-max")) {
    std::string size = inv.Get("memory-max");
    absl::StatusOr<uint64_t> bytes = ParseMemorySize(size);
    if (!bytes.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("exec: --memory-max: ", bytes.status().message()));
    }
    step->set_memory_max(CanonicalMemorySize(size));
  }
  for (const std::string& arg : inv.argv) step->mutable_exec()->add_argv(arg);

  std::string name = inv.Get("name");
  if (name.empty()) {
    name = absl::StrCat("exec ", absl::StrJoin(inv.argv, " "));
    if (name.size() > kMaxDefaultNameBytes)
      name = absl::StrCat(name.substr(0, kMaxDefaultNameBytes - 3), "...");
  }
  spec.set_name(name);
  return spec;
}

CommandSpec ExecCommand() {
  return CommandSpec{
      .name = "exec",
      .synopsis =
          "exec (--all | --host NAME... | -l KEY=VALUE... [--count N]) [--timeout DURATION] "
          "[--memory-max SIZE] [--name NAME] -- ARGV...",
      .summary = "run a command on hosts, stream their output, exit non-zero if any failed",
      .description =
          "Submits a job with one exec step that runs ARGV on the chosen hosts, then streams the "
          "output of every host as it comes, each line prefixed by the host's name:\n\n"
          "    host-a | Linux host-a 6.1.0 ...\n\n"
          "Lines the command wrote to its stderr go to kctl's stderr, the rest to stdout. A last "
          "line without a newline is printed with one when the job ends. ARGV[0] is looked up in "
          "the PATH of the agent. There is no shell: for pipes and redirections, run a shell "
          "(see EXAMPLES).\n\n"
          "When every command has ended, kctl prints one line per host to stderr, e.g.\n\n"
          "    host-a: PASS (exit 0, 1.2s)\n"
          "    host-b: FAIL (exited with status 3, 0.4s)\n"
          "    host-c: FAIL (OOM-killed: memory limit 64 MiB reached (peak 64.0 MiB, 1 OOM kill), "
          "0.4s)\n\n"
          "A command the kernel's OOM killer hit says so: OOM-killed when its own process was "
          "killed, with its cgroup's limit and peak memory; \"N OOM kills in its cgroup\" after "
          "the parentheses when another process of it was (host-d: PASS (exit 0, 3.0s) 1 OOM "
          "kill in its cgroup (peak 63 MiB)). With -o wide every line shows the peak memory of "
          "the command's cgroup. kctl then exits with the job's verdict (see EXIT STATUS).\n\n"
          "The job id is printed to stderr first; interrupting kctl does not stop the job (use "
          "kctl cancel ID). If the "
          "controller goes away meanwhile, kctl waits up to 2 minutes for it to come back and "
          "carries on where it was.\n\n"
          "With -o json, nothing is prefixed: kctl prints one JSON object per line for each "
          "LogData message (data in base64); the last has \"end\": true and the finished job "
          "under \"job\".",
      .flags =
          {
              {.name = "all",
               .help = "Run on every host online when the job is submitted, except builders "
                       "(hosts labelled role=builder, such as the controller's local-builder; "
                       "kctl hosts shows them as KIND builder): name one with --host or select "
                       "them with -l role=builder."},
              {.name = "host",
               .value_name = "NAME",
               .help = "Run on this host (NAME or N1,N2), waiting for it if it is offline.",
               .repeatable = true},
              {.name = "label",
               .short_name = 'l',
               .value_name = "KEY=VALUE",
               .help = "Run on every online host that carries all the given labels; "
                       "-l a=1,b=2 is -l a=1 -l b=2.",
               .repeatable = true},
              {.name = "count",
               .value_name = "N",
               .help = "With -l: run on N distinct hosts carrying the labels, each taken when it "
                       "is idle; the command waits for hosts (and pools grow for it) instead of "
                       "running on every matching host."},
              {.name = "timeout",
               .value_name = "DURATION",
               .help = "End the command after this long (30s, 5m, 2h, 1h30m); its verdict is "
                       "then TIMEOUT. Default: the controller's default for exec steps."},
              {.name = "name",
               .value_name = "NAME",
               .help = "The job's name in kctl jobs. Default: \"exec\" and the command line."},
              {.name = "memory-max",
               .value_name = "SIZE",
               .help = "Limit the memory of the command's cgroup (memory.max) to SIZE bytes, "
                       "with an optional K, M, G or T suffix: 64M, 1G. A command that goes over "
                       "it is killed by the kernel's OOM killer, and its line says OOM-killed. "
                       "Default: no limit."},
          },
      .max_args = 0,
      .takes_argv = true,
      .argv_example = "--all -- uname -r",
      .exit_codes = {{kExitOk, "the command passed on every host"},
                     {kExitFail,
                      "the command failed on a host (non-zero exit, killed by a signal)"},
                     {kExitUsage, ""},
                     {kExitUnreachable, ""},
                     {kExitTimeout, "a host's command ran past --timeout"},
                     {kExitInfraError, "a host was lost or could not run the command"},
                     {kExitCancelled, "the job was cancelled (kctl cancel)"},
                     {kExitNotFound, "a host named with --host is not known"}},
      .examples =
          "kctl exec -l pool=local -- uname -r\n"
          "kctl exec --host host-a --host host-b --timeout 5m -- make -C /src/linux -j8\n"
          "# a shell pipeline on every online test host (builders left out)\n"
          "kctl exec --all -- sh -c 'dmesg | tail -n 5'\n"
          "# does it fit in 64 MiB?\n"
          "kctl exec -l pool=local --memory-max 64M -- stress-ng --vm 1 --vm-bytes 128M -t 10s\n",
      .run = &RunExec,
  };
}

}  // namespace kfleet::cli

#include "cli/top_command.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/host_selector.h"
#include "cli/live_screen.h"
#include "cli/sigint.h"
#include "cli/suggest.h"
#include "cli/top_view.h"
#include "common/duration.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

constexpr absl::Duration kDefaultInterval = absl::Seconds(2);
constexpr absl::Duration kMinInterval = absl::Seconds(1);
// Jobs looked through for the running commands' jobs: running jobs are among the newest.
constexpr uint32_t kJobsForRunning = 100;

struct TopOptions {
  std::string host;
  google::protobuf::Map<std::string, std::string> labels;
  absl::Duration interval = kDefaultInterval;
  bool wide = false;  // the CPU column
  bool cpu = false;   // ask for the CPU counters: -o wide and -o json
};

struct Snapshot {
  std::vector<TopRow> rows;
  std::string note;  // said under the table, e.g. that the controller has no metrics
};

bool Selected(const v1::Host& h, const TopOptions& o) {
  if (!o.host.empty() && h.name() != o.host && h.id() != o.host) return false;
  return std::all_of(o.labels.begin(), o.labels.end(), [&h](const auto& kv) {
    auto it = h.labels().find(kv.first);
    return it != h.labels().end() && it->second == kv.second;
  });
}

absl::StatusOr<Snapshot> Fetch(FleetClient& fleet, const TopOptions& o) {
  ASSIGN_OR_RETURN(v1::ListHostsResponse all, fleet.ListHosts());
  v1::ListHostsResponse hosts;
  bool running = false;
  for (const v1::Host& h : all.hosts()) {
    if (!Selected(h, o)) continue;
    *hosts.add_hosts() = h;
    running = running || !h.running_command_ids().empty();
  }
  if (!o.host.empty() && hosts.hosts().empty()) {
    std::vector<std::string> names;
    for (const v1::Host& h : all.hosts()) names.push_back(h.name());
    std::sort(names.begin(), names.end());  // the first of equally close names is suggested
    return WithExitCode(
        absl::NotFoundError(absl::StrCat("top: no host \"", o.host, "\"", DidYouMean(o.host, names),
                                         "; kctl hosts lists them")),
        kExitNotFound);
  }
  Snapshot snapshot;
  v1::GetHostMetricsRequest request;
  request.set_host(o.host);
  for (const std::string& name : TopMetricNames(o.cpu)) request.add_names(name);
  absl::StatusOr<v1::GetHostMetricsResponse> metrics = fleet.GetHostMetrics(request);
  if (absl::IsUnimplemented(metrics.status())) {
    snapshot.note = "The controller serves no metrics (an older version): only hosts are shown.";
    metrics = v1::GetHostMetricsResponse();
  } else if (absl::IsFailedPrecondition(metrics.status())) {
    // A controller set up to keep no samples.
    snapshot.note = absl::StrCat(metrics.status().message(), ": only hosts are shown.");
    metrics = v1::GetHostMetricsResponse();
  } else if (absl::IsNotFound(metrics.status()) && !hosts.hosts().empty()) {
    metrics = v1::GetHostMetricsResponse();  // a known host without samples yet
  }
  if (!metrics.ok()) return metrics.status();
  v1::ListJobsResponse jobs;
  if (running) {
    ASSIGN_OR_RETURN(jobs, fleet.ListJobs(kJobsForRunning));
  }
  snapshot.rows = BuildTopRows(hosts, *metrics, jobs);
  if (snapshot.rows.empty() && snapshot.note.empty()) {
    snapshot.note = o.labels.empty()
                        ? "No hosts have registered with the controller yet."
                        : absl::StrCat("No host carries the labels ", FormatLabels(o.labels), ".");
  }
  return snapshot;
}

// What the terminal shows: a status line, the table, and what needs a look.
std::string LiveText(const Snapshot& s, const TopOptions& o, const std::string& error, Io& io) {
  absl::Time now = io.now();
  size_t online = std::count_if(s.rows.begin(), s.rows.end(),
                                [](const TopRow& r) { return r.state == v1::ONLINE; });
  size_t busy = std::count_if(s.rows.begin(), s.rows.end(),
                              [](const TopRow& r) { return !r.running.empty(); });
  std::string out =
      absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%S", now, io.tz), "  ", s.rows.size(),
                   s.rows.size() == 1 ? " host, " : " hosts, ", online, " online, ", busy,
                   " busy  (every ", absl::FormatDuration(o.interval), "; Ctrl-C quits)\n\n");
  absl::StrAppend(&out, RenderTopTable(s.rows, o.wide, now));
  std::vector<std::string> oom = HostsWithNewOoms(s.rows);
  if (!oom.empty()) {
    absl::StrAppend(&out, "\nOOM kill since the last sample on ", absl::StrJoin(oom, ", "),
                    ": kctl events --kind oom", oom.size() == 1 ? " --host " + oom[0] : "", "\n");
  }
  if (!s.note.empty()) absl::StrAppend(&out, "\n", s.note, "\n");
  if (!error.empty()) absl::StrAppend(&out, "\nkctl: ", error, " (retrying)\n");
  return out;
}

absl::StatusOr<int> RunLive(FleetClient& fleet, const TopOptions& o, Context& ctx) {
  // The first look reports a controller it cannot reach, as every command does.
  ASSIGN_OR_RETURN(Snapshot last, Fetch(fleet, o));
  SigintCatcher sigint;
  LiveScreen screen(ctx.io.out, LiveScreen::Mode::kFullScreen, ctx.io.columns);
  std::string error;
  while (true) {
    screen.Draw(LiveText(last, o, error, ctx.io));
    if (sigint.SleepUnlessInterrupted(ctx.io, o.interval)) break;
    absl::StatusOr<Snapshot> next = Fetch(fleet, o);
    if (sigint.caught()) break;
    // Later failures (a controller restart) are shown under the last table, which stays.
    error = next.ok() ? "" : std::string(next.status().message());
    if (next.ok()) last = *std::move(next);
  }
  screen.Close();
  return kExitOk;
}

absl::StatusOr<int> RunTop(const Invocation& inv, Context& ctx) {
  TopOptions o;
  o.host = inv.Get("host");
  o.wide = inv.globals.output == OutputFormat::kWide;
  for (const std::string& l : inv.GetAll("label")) {
    absl::Status s = MergeLabels(l, &o.labels);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("top: -l: ", s.message()));
  }
  if (inv.Has("interval")) {
    absl::StatusOr<absl::Duration> d = ParseDuration(inv.Get("interval"));
    if (!d.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("top: --interval: ", d.status().message()));
    }
    if (*d < kMinInterval) {
      return absl::InvalidArgumentError(absl::StrCat("top: --interval: ", inv.Get("interval"),
                                                     " is too short (expected at least 1s, e.g. "
                                                     "2s)"));
    }
    o.interval = *d;
  }
  bool json = inv.globals.output == OutputFormat::kJson;
  o.cpu = o.wide || json;
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  if (ctx.io.out_is_tty && !json && !inv.Has("once")) return RunLive(*fleet, o, ctx);

  ASSIGN_OR_RETURN(Snapshot s, Fetch(*fleet, o));
  if (!s.note.empty()) ctx.io.err << s.note << "\n";
  if (json) {
    ctx.io.out << TopJson(s.rows, ctx.io.now());
    return kExitOk;
  }
  if (!s.rows.empty()) ctx.io.out << RenderTopTable(s.rows, o.wide, ctx.io.now());
  return kExitOk;
}

}  // namespace

CommandSpec TopCommand() {
  return CommandSpec{
      .name = "top",
      .synopsis =
          "top [--host NAME] [-l KEY=VALUE...] [--interval DURATION] [--once] "
          "[-o table|wide|json]",
      .summary = "live table of hosts: memory, load, pressure, OOM kills, running commands",
      .description =
          "Shows one row per host, sorted by name, from the samples each agent sends (its "
          "/proc and /sys, in node_exporter's names). On a terminal the table is redrawn in "
          "place every --interval (default 2s) until Ctrl-C; otherwise, or with --once or -o "
          "json, it is printed once.\n\n"
          "    HOST   STATE    MEM             LOAD1   PSI-CPU   PSI-MEM   PSI-IO   OOM     AGE   "
          "RUNNING\n"
          "    g-1    online   245MiB/482MiB   0.52    1.5%      12.0%     0.5%     3(+1)   2s    "
          "c-7 (j-3)\n"
          "    g-2    online   256MiB/1.0GiB   0.00    -         -         -        0       5s    "
          "-\n\n"
          "MEM is memory in use (MemTotal - MemAvailable) of the total. LOAD1 is the 1-minute "
          "load average. PSI-CPU, PSI-MEM and PSI-IO are pressure stall information: the share "
          "of the time some task was stalled waiting for CPU, memory or I/O (the \"some\" line "
          "of /proc/pressure/*), over the last two samples; - until the agent has sent two. "
          "Memory pressure rising ahead of OOM kills is the sign of a host that is short of "
          "memory. OOM counts the kernel's OOM kills since the host booted (vmstat oom_kill), "
          "with (+N) when N happened since the sample before; kctl events --kind oom tells "
          "who was killed. AGE is the age of the samples. RUNNING, last, lists the commands "
          "the host runs, each with its job: c-... (j-... NAME). A host that has sent no "
          "samples shows a dash in every metric column.\n\n"
          "-o wide adds CPU, the share of all CPUs' time not idle. -o json prints {\"hosts\": "
          "[...]} with name, id, state, labels, sample_time_unix_ms, sample_age_ms, "
          "mem_total_bytes, mem_used_bytes, load1, cpu_busy_percent, "
          "psi_cpu_percent, psi_memory_percent, psi_io_percent, oom_kills, oom_kills_new and "
          "running ([{command_id, job_id, job_name}]), leaving out what is not known.",
      .flags =
          {
              {.name = "host", .value_name = "NAME", .help = "Only this host."},
              {.name = "label",
               .short_name = 'l',
               .value_name = "KEY=VALUE",
               .help = "Only hosts carrying all the given labels; -l a=1,b=2 is -l a=1 -l b=2.",
               .repeatable = true},
              {.name = "interval",
               .value_name = "DURATION",
               .help = "How often to redraw on a terminal (default 2s, at least 1s). Agents "
                       "send samples at the controller's metrics interval: faster redraws show "
                       "the same samples again, with their AGE growing."},
              {.name = "once", .help = "Print the table once, also on a terminal."},
          },
      .exit_codes = {{kExitOk, "the table was shown; on a terminal, ended with Ctrl-C"},
                     {kExitUsage, ""},
                     {kExitUnreachable, ""},
                     {kExitNotFound, "no such host"}},
      .examples =
          "kctl top\n"
          "kctl top -l pool=local --interval 5s\n"
          "# hosts that had an OOM kill since the sample before\n"
          "kctl top -o json | jq -r '.hosts[] | select(.oom_kills_new > 0) | .name'\n",
      .run = &RunTop,
  };
}

}  // namespace kfleet::cli

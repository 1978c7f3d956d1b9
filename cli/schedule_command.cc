#include "cli/schedule_command.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/host_selector.h"
#include "cli/json.h"
#include "cli/schedule_view.h"
#include "cli/suggest.h"
#include "common/duration.h"
#include "common/ids.h"
#include "common/memory_size.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

constexpr absl::Duration kMinEveryAfter = absl::Seconds(1);
constexpr absl::Duration kMaxDuration = absl::Hours(366 * 24);
constexpr uint64_t kMinMemory = 1 << 20;

const std::vector<std::string>& Subcommands() {
  static const auto* const kSubs =
      new std::vector<std::string>{"add", "ls", "show", "runs", "pause", "resume", "rm"};
  return *kSubs;
}

// Flags each subcommand takes (the global ones aside).
const std::vector<std::string>& FlagsOf(const std::string& sub) {
  static const auto* const kAdd = new std::vector<std::string>{"host",   "label",   "every-after",
                                                               "jitter", "timeout", "memory-max"};
  static const auto* const kRuns = new std::vector<std::string>{"host", "limit", "follow"};
  static const auto* const kRm = new std::vector<std::string>{"cancel"};
  static const auto* const kNone = new std::vector<std::string>{};
  if (sub == "add") return *kAdd;
  if (sub == "runs") return *kRuns;
  if (sub == "rm") return *kRm;
  return *kNone;
}

absl::Status Usage(const std::string& sub, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("schedule ", sub, ": ", why));
}

// The flags, NAME and "--" of the invocation fit the subcommand.
absl::Status CheckShape(const Invocation& inv, const std::string& sub) {
  const std::vector<std::string>& allowed = FlagsOf(sub);
  for (const auto& [flag, values] : inv.flags) {
    if (std::find(allowed.begin(), allowed.end(), flag) != allowed.end()) continue;
    return Usage(
        sub, absl::StrCat("--", flag, " is not a flag of kctl schedule ", sub,
                          allowed.empty() ? "" : " (it takes --", absl::StrJoin(allowed, ", --"),
                          allowed.empty() ? "" : ")", "; see kctl schedule --help"));
  }
  bool named = sub != "ls";
  if (named && inv.args.size() < 2) {
    return Usage(sub, absl::StrCat("missing the schedule's NAME, e.g. kctl schedule ", sub,
                                   sub == "add" ? " mbsync-inbox --host mail --every-after 5m -- "
                                                  "mbsync inbox"
                                                : " mbsync-inbox"));
  }
  if (!named && inv.args.size() > 1) {
    return Usage(sub, absl::StrCat("unexpected argument \"", inv.args[1],
                                   "\": kctl schedule ls lists every schedule"));
  }
  if (inv.has_argv && sub != "add") {
    return Usage(sub, "only kctl schedule add takes a command after \"--\"");
  }
  if (named && !IsValidId(inv.args[1])) {
    return Usage(sub, absl::StrCat("\"", inv.args[1].substr(0, 64),
                                   "\" is not a schedule name: use 1 to 64 letters, digits, '.', "
                                   "'_' and '-', starting with a letter or digit (e.g. "
                                   "mbsync-inbox)"));
  }
  return absl::OkStatus();
}

// A duration flag in milliseconds, within [min, kMaxDuration]; 0 when not given.
absl::StatusOr<uint64_t> DurationFlag(const Invocation& inv, const char* flag, absl::Duration min,
                                      absl::string_view example) {
  if (!inv.Has(flag)) return 0;
  absl::StatusOr<absl::Duration> d = ParseDuration(inv.Get(flag));
  if (!d.ok()) return Usage("add", absl::StrCat("--", flag, ": ", d.status().message()));
  if (*d < min || *d > kMaxDuration) {
    return Usage(
        "add", absl::StrCat("--", flag, ": ", inv.Get(flag), " is out of range: give ",
                            ShortDuration(min), " to 8784h (a year), e.g. --", flag, " ", example));
  }
  return static_cast<uint64_t>(absl::ToInt64Milliseconds(*d));
}

absl::StatusOr<int> PrintJson(const google::protobuf::Message& m, Context& ctx) {
  ASSIGN_OR_RETURN(std::string json, ToJson(m, JsonStyle::kPretty));
  ctx.io.out << json;
  return kExitOk;
}

absl::StatusOr<int> RunAdd(const Invocation& inv, Context& ctx) {
  ASSIGN_OR_RETURN(v1::Schedule schedule, BuildSchedule(inv));
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::Schedule added, fleet->AddSchedule(schedule));
  if (inv.globals.output == OutputFormat::kJson) return PrintJson(added, ctx);
  ctx.io.out << RenderScheduleAdded(added);
  return kExitOk;
}

absl::StatusOr<int> RunList(const Invocation& inv, Context& ctx) {
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::ListSchedulesResponse all, fleet->ListSchedules());
  if (inv.globals.output == OutputFormat::kJson) return PrintJson(all, ctx);
  if (all.schedules().empty()) {
    ctx.io.err << "No schedules. Add one with kctl schedule add NAME --host HOST --every-after 5m "
                  "-- COMMAND...\n";
    return kExitOk;
  }
  ctx.io.out << RenderSchedulesTable(all, inv.globals.output == OutputFormat::kWide, ctx.io.now());
  return kExitOk;
}

absl::StatusOr<int> RunShow(const Invocation& inv, Context& ctx) {
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::Schedule s, fleet->GetSchedule(inv.args[1]));
  if (inv.globals.output == OutputFormat::kJson) return PrintJson(s, ctx);
  ctx.io.out << RenderScheduleDetail(s, ctx.io.now(), ctx.io.tz);
  return kExitOk;
}

absl::StatusOr<int> RunPause(const Invocation& inv, Context& ctx, bool paused) {
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::Schedule s, fleet->PauseSchedule(inv.args[1], paused));
  if (inv.globals.output == OutputFormat::kJson) return PrintJson(s, ctx);
  ctx.io.out << "schedule " << s.name() << (paused ? " paused" : " resumed") << " (revision "
             << s.revision() << ")"
             << (paused ? ": a run in progress finishes; no new run starts until kctl schedule "
                          "resume " +
                              s.name()
                        : ": the next run starts every-after its last run ended")
             << "\n";
  return kExitOk;
}

absl::StatusOr<int> RunRemove(const Invocation& inv, Context& ctx) {
  bool cancel = inv.Has("cancel");
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::RemoveScheduleResponse removed, fleet->RemoveSchedule(inv.args[1], cancel));
  if (inv.globals.output == OutputFormat::kJson) return PrintJson(removed, ctx);
  ctx.io.out << "schedule " << removed.schedule().name() << " removed\n";
  for (const v1::ScheduleRun& run : removed.running()) {
    ctx.io.out << "  run " << run.command_id() << " on " << run.host_name()
               << (cancel ? " is being cancelled"
                          : " is in progress and finishes (kctl schedule rm --cancel, or kctl "
                            "cancel " +
                                run.job_id() + ", stops it)")
               << "\n";
  }
  return kExitOk;
}

absl::StatusOr<int> RunSchedule(const Invocation& inv, Context& ctx) {
  const std::string& sub = inv.args[0];
  if (std::find(Subcommands().begin(), Subcommands().end(), sub) == Subcommands().end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schedule: unknown subcommand \"", sub, "\"", DidYouMean(sub, Subcommands()),
        " (expected one of ", absl::StrJoin(Subcommands(), ", "), "); see kctl schedule --help"));
  }
  RETURN_IF_ERROR(CheckShape(inv, sub));
  if (sub == "add") return RunAdd(inv, ctx);
  if (sub == "ls") return RunList(inv, ctx);
  if (sub == "show") return RunShow(inv, ctx);
  if (sub == "runs") return RunScheduleRuns(inv, ctx);
  if (sub == "pause") return RunPause(inv, ctx, true);
  if (sub == "resume") return RunPause(inv, ctx, false);
  return RunRemove(inv, ctx);
}

}  // namespace

absl::StatusOr<v1::Schedule> BuildSchedule(const Invocation& inv) {
  v1::Schedule s;
  const std::string& name = inv.args.size() > 1 ? inv.args[1] : "";
  if (!IsValidId(name) || !absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) {
    return Usage("add", absl::StrCat("\"", name.substr(0, 64),
                                     "\" is not a schedule name: use 1 to 64 letters, digits, "
                                     "'.', '_' and '-', starting with a letter or digit (e.g. "
                                     "mbsync-inbox)"));
  }
  s.set_name(name);
  if (inv.Has("host") == inv.Has("label")) {
    return Usage("add", inv.Has("host")
                            ? "--host and -l cannot be combined: give the hosts by name or by "
                              "labels"
                            : "no hosts chosen: give --host NAME (repeatable) or -l KEY=VALUE "
                              "(every host carrying the labels, hosts that register later too)");
  }
  absl::StatusOr<v1::HostSelector> selector =
      BuildHostSelector(false, inv.GetAll("host"), inv.GetAll("label"));
  if (!selector.ok()) return Usage("add", selector.status().message());
  for (const std::string& host : selector->names()) {
    if (!IsValidId(host)) {
      return Usage("add", absl::StrCat("--host: \"", host.substr(0, 64),
                                       "\" is not a host name; kctl hosts lists them"));
    }
  }
  *s.mutable_host_names() = selector->names();
  *s.mutable_labels() = selector->labels();
  if (!inv.Has("every-after")) {
    return Usage("add",
                 "--every-after is required: the pause from the end of a run to the start of the "
                 "next, e.g. --every-after 5m");
  }
  ASSIGN_OR_RETURN(uint64_t every, DurationFlag(inv, "every-after", kMinEveryAfter, "5m"));
  s.set_every_after_ms(every);
  ASSIGN_OR_RETURN(uint64_t jitter, DurationFlag(inv, "jitter", absl::Milliseconds(1), "30s"));
  s.set_jitter_ms(jitter);
  ASSIGN_OR_RETURN(uint64_t timeout, DurationFlag(inv, "timeout", absl::Seconds(1), "10m"));
  s.set_timeout_ms(timeout);
  if (inv.Has("memory-max")) {
    absl::StatusOr<uint64_t> bytes = ParseMemorySize(inv.Get("memory-max"));
    if (!bytes.ok()) {
      return Usage("add", absl::StrCat("--memory-max: ", bytes.status().message()));
    }
    if (*bytes < kMinMemory) {
      return Usage("add", absl::StrCat("--memory-max: ", inv.Get("memory-max"),
                                       " is below 1M, too little to start a process: give e.g. "
                                       "--memory-max 64M"));
    }
    s.set_memory_max_bytes(*bytes);
  }
  if (inv.argv.empty() || inv.argv[0].empty()) {
    return Usage("add",
                 "missing the command to run after \"--\", e.g. kctl schedule add mbsync-inbox "
                 "--host mail --every-after 5m -- mbsync inbox");
  }
  for (const std::string& a : inv.argv) s.add_argv(a);
  return s;
}

CommandSpec ScheduleCommand() {
  return CommandSpec{
      .name = "schedule",
      .synopsis =
          "schedule add NAME (--host NAME... | -l KEY=VALUE...) --every-after DURATION "
          "[--jitter DURATION] [--timeout DURATION] [--memory-max SIZE] -- ARGV... | schedule ls "
          "| schedule show NAME | schedule runs NAME [--host NAME] [--limit N] [-f] | schedule "
          "pause NAME | schedule resume NAME | schedule rm NAME [--cancel]",
      .summary = "run a command again and again on hosts: add, ls, show, runs, pause, resume, rm",
      .description =
          "A schedule is a command its hosts' agents run again --every-after DURATION after "
          "their last run of it ended (systemd's OnUnitInactiveSec), plus a random delay below "
          "--jitter; never two runs of one schedule at once on a host, however long a run "
          "takes. The first run starts when the host gets the schedule. The agents keep their "
          "schedules on disk and run them while the controller is away; the runs reach the "
          "controller, each once, when it is back.\n\n"
          "kctl schedule add NAME ... -- ARGV... stores the schedule and sends it to its hosts: "
          "--host NAME (repeatable; a host the controller knows), or -l KEY=VALUE (every host "
          "carrying the labels, hosts that register later too). Each run is a command under "
          "the host's own cgroup, with --timeout and --memory-max as for kctl exec, and a job "
          "of its own named \"schedule NAME\": kctl logs COMMAND-ID and kctl job JOB show it. "
          "The controller keeps the newest 100 runs per schedule and host.\n\n"
          "kctl schedule ls lists the schedules: NAME HOSTS EVERY-AFTER STATE LAST-RUN RESULT "
          "COMMAND (-o wide adds JITTER TIMEOUT MEMORY-MAX REVISION). kctl schedule show NAME "
          "prints one schedule and, per host, its runs and last run. RESULT is pass, fail, oom "
          "(OOM-killed under --memory-max), timeout, cancelled, or running.\n\n"
          "kctl schedule runs NAME prints the newest runs (20 unless --limit says otherwise), "
          "oldest first: STARTED HOST COMMAND-ID RESULT; -o wide adds DUE, SPACING (its start "
          "minus the end of the run before, as the agent measured them) and JOB. With -f, kctl "
          "prints each run as it starts and again as it ends, until Ctrl-C (across a controller "
          "restart too), and then exits 0.\n\n"
          "kctl schedule pause NAME stops new runs (a run in progress finishes); resume starts "
          "them again. kctl schedule rm NAME removes the schedule from its hosts: a run in "
          "progress finishes, or with --cancel is cancelled (SIGTERM, then SIGKILL). Runs made "
          "while a host was offline still arrive and are stored after rm.\n\n"
          "With -o json, kctl prints one document: the Schedule (add, show, pause, resume), "
          "{\"schedules\": [...]} (ls), {\"runs\": [...]} (runs), {\"schedule\": ..., "
          "\"running\": [...]} (rm); with runs -f, one ScheduleRun per line.",
      .flags =
          {
              {.name = "host",
               .value_name = "NAME",
               .help = "add: run on this host (NAME or N1,N2). runs: only this host's runs.",
               .repeatable = true},
              {.name = "label",
               .short_name = 'l',
               .value_name = "KEY=VALUE",
               .help = "add: run on every host carrying all the given labels, now and later; "
                       "-l a=1,b=2 is -l a=1 -l b=2.",
               .repeatable = true},
              {.name = "every-after",
               .value_name = "DURATION",
               .help = "add: start the next run this long after the last one ended (1s to "
                       "8784h): 30s, 5m, 1h."},
              {.name = "jitter",
               .value_name = "DURATION",
               .help = "add: wait a random time below DURATION more, so hosts do not run it in "
                       "step. Default: none."},
              {.name = "timeout",
               .value_name = "DURATION",
               .help = "add: end a run after this long; its result is then timeout. Default: "
                       "the default of exec commands, 1h."},
              {.name = "memory-max",
               .value_name = "SIZE",
               .help = "add: limit the memory of each run's cgroup (64M, 1G); a run over it is "
                       "OOM-killed and its result is oom. Default: no limit."},
              {.name = "limit",
               .value_name = "N",
               .help = "runs: print the newest N runs (default 20, at most 1000)."},
              {.name = "follow",
               .short_name = 'f',
               .help = "runs: keep printing runs as they start and end, until Ctrl-C."},
              {.name = "cancel",
               .help = "rm: cancel the runs in progress instead of letting them finish."},
          },
      .min_args = 1,
      .max_args = 2,
      .args_hint = "the subcommand: kctl schedule add|ls|show|runs|pause|resume|rm",
      .takes_argv = true,
      .argv_optional = true,
      .argv_example = "add NAME --host mail --every-after 5m -- mbsync inbox",
      .exit_codes = {{kExitOk, "done; runs -f was ended with Ctrl-C"},
                     {kExitUsage, "bad input, or the name is in use; nothing was stored"},
                     {kExitUnreachable, ""},
                     {kExitNotFound, "no such schedule, or a --host the controller does not know"},
                     {kExitDenied, "not authenticated, or the role may not change schedules"}},
      .examples =
          "kctl schedule add mbsync-inbox --host mail --every-after 5m --memory-max 200M -- "
          "mbsync inbox\n"
          "# a smoke test on every guest of the pool, guests that come later too\n"
          "kctl schedule add smoke -l pool=local --every-after 1h --timeout 10m -- uname -r\n"
          "kctl schedule ls\n"
          "kctl schedule runs mbsync-inbox -f\n"
          "# the last run's output\n"
          "kctl logs $(kctl schedule runs mbsync-inbox --limit 1 -o json | jq -r "
          "'.runs[0].command_id')\n"
          "kctl schedule pause mbsync-inbox\n"
          "kctl schedule rm mbsync-inbox --cancel\n",
      .run = &RunSchedule,
  };
}

}  // namespace kfleet::cli

#include "cli/events_command.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json.h"
#include "cli/reconnector.h"
#include "cli/sigint.h"
#include "cli/suggest.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

constexpr absl::Duration kPollInterval = absl::Seconds(1);
constexpr uint32_t kPageSize = 100;  // what the controller sends for limit 0
constexpr uint32_t kMaxLimit = 10000;

bool IsMemcgOom(const v1::OomKill& o) { return o.memcg() || o.constraint() == "CONSTRAINT_MEMCG"; }

// Where the memory ran out, for the kernel's own OOM killer.
std::string OomScope(const v1::OomKill& o) {
  if (IsMemcgOom(o)) {
    const std::string& cgroup = o.oom_memcg().empty() ? o.task_memcg() : o.oom_memcg();
    return cgroup.empty() ? "memcg limit" : absl::StrCat("memcg limit ", cgroup);
  }
  if (o.constraint() == "CONSTRAINT_CPUSET") return "cpuset out of memory";
  if (o.constraint() == "CONSTRAINT_MEMORY_POLICY") return "mempolicy out of memory";
  return "host out of memory";
}

std::string EventText(const v1::Event& e) {
  if (e.has_oom() && (e.oom().pid() != 0 || !e.oom().comm().empty())) {
    return DescribeOomKill(e.oom());
  }
  return OneLine(e.message());
}

class EventPrinter {
 public:
  EventPrinter(Io& io, OutputFormat output) : io_(io), output_(output) {}

  absl::Status Print(const v1::Event& e) {
    if (output_ == OutputFormat::kJson) {
      ASSIGN_OR_RETURN(std::string line, ToJson(e, JsonStyle::kLine));
      io_.out << line;
    } else {
      io_.out << FormatEvent(e, io_.tz, output_ == OutputFormat::kWide) << "\n";
    }
    return absl::OkStatus();
  }

 private:
  Io& io_;
  const OutputFormat output_;
};

// Prints what is new and asks again every second, from the largest id seen: the controller
// numbers events as it stores them, so nothing is missed or printed twice, across a controller
// restart too. Ends with exit 0 on Ctrl-C.
absl::StatusOr<int> Follow(v1::ListEventsRequest request, FleetClient& fleet, Context& ctx,
                           OutputFormat output) {
  SigintCatcher sigint;
  EventPrinter printer(ctx.io, output);
  Reconnector reconnector(ctx.io, fleet.address());
  uint64_t last_id = 0;
  while (!sigint.caught()) {
    absl::StatusOr<v1::ListEventsResponse> events;
    absl::Status s = reconnector.Run([&] {
      if (sigint.caught()) return absl::CancelledError("interrupted");
      events = fleet.ListEvents(request);
      if (events.ok()) reconnector.Connected();
      return events.status();
    });
    if (sigint.caught()) break;
    if (!s.ok()) return s;
    for (const v1::Event& e : events->events()) {
      if (e.id() == 0) {
        // Without ids every poll would print the newest events again.
        return absl::FailedPreconditionError(
            "events -f: the controller does not number its events (it is older than kctl); "
            "upgrade it, or run kctl events without -f");
      }
    }
    for (const v1::Event& e : events->events()) {
      if (e.id() <= last_id) continue;  // a controller that ignored after_id
      // History (from before an agent first started) is stored as it is read, but is not news.
      if (!e.before_agent()) RETURN_IF_ERROR(printer.Print(e));
      last_id = std::max(last_id, e.id());
    }
    ctx.io.out.flush();
    // A full page after after_id: more are waiting, ask at once.
    bool more = request.after_id() != 0 &&
                static_cast<uint32_t>(events->events_size()) >= kPageSize && last_id != 0;
    request.set_after_id(last_id);
    request.set_limit(0);
    if (!more && sigint.SleepUnlessInterrupted(ctx.io, kPollInterval)) break;
  }
  return kExitOk;
}

absl::StatusOr<int> RunEvents(const Invocation& inv, Context& ctx) {
  v1::ListEventsRequest req;
  req.set_host(inv.Get("host"));
  if (inv.Has("kind")) {
    RETURN_IF_ERROR(CheckEventKind(inv.Get("kind")));
    req.set_kind(inv.Get("kind"));
  }
  if (inv.Has("limit")) {
    uint32_t limit = 0;
    if (!absl::SimpleAtoi(inv.Get("limit"), &limit) || limit == 0 || limit > kMaxLimit) {
      return absl::InvalidArgumentError(absl::StrCat("events: --limit: \"", inv.Get("limit"),
                                                     "\" is not a number from 1 to ", kMaxLimit));
    }
    req.set_limit(limit);
  }
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  if (inv.Has("follow")) return Follow(req, *fleet, ctx, inv.globals.output);

  ASSIGN_OR_RETURN(v1::ListEventsResponse events, fleet->ListEvents(req));
  if (inv.globals.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(std::string json, ToJson(events, JsonStyle::kPretty));
    ctx.io.out << json;
    return kExitOk;
  }
  if (events.events().empty()) {
    ctx.io.err << "No events" << (req.kind().empty() ? "" : absl::StrCat(" of kind ", req.kind()))
               << (req.host().empty() ? "" : absl::StrCat(" on ", req.host())) << ".\n";
    return kExitOk;
  }
  EventPrinter printer(ctx.io, inv.globals.output);
  for (const v1::Event& e : events.events()) RETURN_IF_ERROR(printer.Print(e));
  return kExitOk;
}

}  // namespace

const std::vector<std::string>& EventKinds() {
  static const auto* const kKinds = new std::vector<std::string>{
      // From the kernel log.
      "oom", "oops", "bug", "panic", "warn", "hung_task", "soft_lockup", "kasan",
      // From the agent and the controller.
      "agent_killed", "agent_lost", "boot", "reboot", "power_cycle", "boot_failed", "guest_created",
      "guest_registered", "guest_failed",
      // From an agent's --watch-units.
      "unit_failed"};
  return *kKinds;
}

absl::Status CheckEventKind(absl::string_view kind) {
  const std::vector<std::string>& kinds = EventKinds();
  if (std::find(kinds.begin(), kinds.end(), kind) != kinds.end()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("events: --kind: unknown kind \"", kind, "\"",
                                                 DidYouMean(kind, kinds), " (expected one of ",
                                                 absl::StrJoin(kinds, ", "), ")"));
}

std::string DescribeOomKill(const v1::OomKill& o) {
  std::string out = absl::StrCat("killed ", o.pid(), " (", o.comm(), ")");
  bool kernel = o.killer().empty() || o.killer() == "kernel";
  if (!kernel) absl::StrAppend(&out, " by ", o.killer());
  if (o.anon_rss_kb() > 0) absl::StrAppend(&out, " anon-rss ", FormatBytes(o.anon_rss_kb() << 10));
  if (kernel) {
    absl::StrAppend(&out, ", ", OomScope(o));
  } else if (!o.task_memcg().empty()) {
    absl::StrAppend(&out, ", in ", o.task_memcg());
  }
  return out;
}

std::string FormatEvent(const v1::Event& e, absl::TimeZone tz, bool wide) {
  std::string line = absl::StrCat(FormatTime(e.time_unix_ms(), tz), "  ",
                                  e.host_name().empty() ? e.host_id() : e.host_name(), "  ",
                                  e.kind(), "  ", EventText(e));
  if (!e.command_id().empty()) absl::StrAppend(&line, " [command ", e.command_id(), "]");
  // A unit_failed event's text names its unit already.
  if (!e.unit().empty() && e.kind() != "unit_failed") {
    absl::StrAppend(&line, " [unit ", e.unit(), "]");
  }
  if (e.before_agent()) absl::StrAppend(&line, " [before agent]");
  if (wide && !e.detail().empty()) {
    for (absl::string_view detail : absl::StrSplit(e.detail(), '\n', absl::SkipWhitespace())) {
      absl::StrAppend(&line, "\n    ", detail);
    }
  }
  return line;
}

CommandSpec EventsCommand() {
  return CommandSpec{
      .name = "events",
      .synopsis = "events [--host NAME] [--kind KIND] [--limit N] [-f] [-o table|wide|json]",
      .summary = "show hosts' timelines: OOM kills, oopses, panics, boots, reboots",
      .description =
          "Prints the newest events (100 unless --limit says otherwise), oldest first, one per "
          "line: TIME HOST KIND TEXT, and [command ID] when a command of kfleet was running, or "
          "[unit NAME] when it happened in a systemd unit the host's agent watches "
          "(kfleet-agent --watch-units).\n\n"
          "From the kernel log of each host: oom (the OOM killer killed a process), oops, bug "
          "(BUG:), panic, warn (WARNING:), hung_task, soft_lockup, kasan; agent_killed (the "
          "agent died and came back). From the agent and the controller: agent_lost, boot (a "
          "host registered with a new boot id), reboot, power_cycle, boot_failed, "
          "guest_created, guest_registered, guest_failed (a pool could not bring a guest up, or "
          "a provider call failed: the pool, the guest and the controller's error); "
          "unit_failed (a run of a watched systemd unit ended in failure: the unit, systemd's "
          "result such as exit-code or oom-kill, how long it ran and its memory peak).\n\n"
          "The TEXT of an OOM kill names its victim, its memory and what ran out:\n\n"
          "    killed 4242 (stress-ng) anon-rss 64 MiB, memcg limit /kfleet/c-1 [command c-1]\n\n"
          "\"memcg limit CGROUP\" says a cgroup's memory limit was hit (kctl exec --memory-max), "
          "\"host out of memory\" that the whole machine ran out; \"by earlyoom\" names a "
          "userspace killer. Other kernel events show the report's first line; -o wide adds the "
          "lines that followed (the call trace), indented.\n\n"
          "A kernel log record is one event, stored on the host whose command it hit, even when "
          "two agents on one machine report it. [before agent] marks history: a record the "
          "kernel logged before the host's agent first started (it had no kmsg cursor), kept "
          "for the timeline but not counted in /metrics; -o json says \"before_agent\": true.\n\n"
          "With -f, kctl keeps printing new events as the controller stores them (it asks every "
          "second for events after the last one it printed, so none is missed or repeated, "
          "across a controller restart too) until Ctrl-C, and then exits 0. History is left "
          "out.\n\n"
          "With -o json, kctl prints one document, {\"events\": [...]} with the fields of the "
          "Event message; with -f, one Event per line.",
      .flags =
          {
              {.name = "host", .value_name = "NAME", .help = "Only this host's events."},
              {.name = "kind",
               .value_name = "KIND",
               .help = "Only events of this kind: oom, oops, bug, panic, warn, hung_task, "
                       "soft_lockup, kasan, agent_killed, agent_lost, boot, reboot, "
                       "power_cycle, boot_failed, guest_created, guest_registered, "
                       "guest_failed, unit_failed."},
              {.name = "limit",
               .value_name = "N",
               .help = "Print the newest N events (default 100, at most 10000)."},
              {.name = "follow",
               .short_name = 'f',
               .help = "Keep printing new events until Ctrl-C."},
          },
      .exit_codes = {{kExitOk,
                      "the events were printed (also when there are none), or -f was "
                      "ended with Ctrl-C"},
                     {kExitUsage, "an unknown --kind or a bad --limit"},
                     {kExitUnreachable, ""},
                     {kExitNotFound, "no such host"}},
      .examples =
          "kctl events\n"
          "kctl events --host local-1 --kind oom\n"
          "# kernel trouble as it happens, with call traces\n"
          "kctl events -f -o wide\n"
          "# the victims of OOM kills, for a script\n"
          "kctl events --kind oom -o json | jq -r '.events[].oom.comm'\n",
      .run = &RunEvents,
  };
}

}  // namespace kfleet::cli

#include "cli/pools_command.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/host_selector.h"
#include "cli/job_view.h"
#include "cli/json.h"
#include "cli/reconnector.h"
#include "cli/table.h"
#include "common/duration.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

constexpr absl::Duration kBringupPoll = absl::Seconds(1);
constexpr absl::Duration kDefaultBringupTimeout = absl::Minutes(15);

absl::StatusOr<int> PrintJson(const google::protobuf::Message& m, Context& ctx) {
  ASSIGN_OR_RETURN(std::string json, ToJson(m, JsonStyle::kPretty));
  ctx.io.out << json;
  return kExitOk;
}

absl::StatusOr<int> RunPools(const Invocation& inv, Context& ctx) {
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::ListPoolsResponse pools, fleet->ListPools());
  if (inv.globals.output == OutputFormat::kJson) return PrintJson(pools, ctx);
  ctx.io.out << RenderPools(pools, ctx.io.now());
  return kExitOk;
}

// Where one guest of a bring-up stands, from the controller's view of its pool.
struct GuestStanding {
  std::string state;  // what kctl prints: "creating", "booting (kvm)", "registered", "failed"
  std::string error;  // why it failed, the controller's words
  bool settled = false;
  bool failed = false;
};

GuestStanding StandingOf(const v1::Guest& asked, const v1::ListPoolsResponse& pools,
                         absl::Time now) {
  const v1::Pool* pool = nullptr;
  const v1::Guest* g = nullptr;
  for (const v1::Pool& p : pools.pools()) {
    if (p.name() != asked.pool()) continue;
    pool = &p;
    for (const v1::Guest& candidate : p.guests()) {
      // The same name may come back as another guest (host id) once this one is gone.
      if (candidate.host_id() == asked.host_id()) g = &candidate;
    }
  }
  GuestStanding out;
  auto fail = [&](std::string error) {
    out.state = "failed";
    out.error = std::move(error);
    out.settled = out.failed = true;
    return out;
  };
  if (pool == nullptr || g == nullptr) return fail("it was destroyed before it came up");
  // Tried again after the pool's backoff: say when, and how to stop it.
  std::string retry;
  if (pool->next_attempt_unix_ms() != 0) {
    absl::Duration in = absl::FromUnixMillis(pool->next_attempt_unix_ms()) - now;
    retry = absl::StrCat("; the controller tries again ",
                         in > absl::ZeroDuration() ? absl::StrCat("in ", ShortDuration(in)) : "now",
                         " (failed attempts so far: ", pool->failed_attempts(), "; kctl pools), ",
                         "kctl destroy ", g->name(), " stops it");
  }
  if (g->state() == "failed") return fail(g->detail());
  if (g->state() == "creating" && !g->detail().empty()) return fail(g->detail() + retry);
  if (g->state() == "creating" && pool->failed_attempts() > 0 &&
      pool->last_error_unix_ms() >= g->created_unix_ms()) {
    // The pool failed since this guest was asked for: its turn waits for the backoff.
    return fail(
        absl::StrCat("not tried yet: pool ", pool->name(), " failed to bring up ",
                     pool->last_error_guest().empty() ? "a guest" : pool->last_error_guest(), ": ",
                     pool->last_error(), retry));
  }
  if (g->state() == "running" && g->registered_unix_ms() != 0) {
    out.state = "registered";
    out.settled = true;
  } else if (g->state() == "running") {
    out.state = g->accel().empty() ? "booting" : absl::StrCat("booting (", g->accel(), ")");
  } else {
    out.state = g->state();
  }
  return out;
}

// Follows the guests of `r` until each registered or failed, or `timeout` passed, saying on
// stderr how each one moves along. Updates the guests in `r` to what the controller last said.
absl::StatusOr<int> WaitForGuests(v1::BringupResponse& r, absl::Duration timeout,
                                  FleetClient& fleet, Context& ctx) {
  Io& io = ctx.io;
  absl::Time start = io.now();
  Reconnector reconnector(io, fleet.address());
  reconnector.Connected();  // Bringup was answered: a controller that goes away is waited for
  std::map<std::string, std::string> said;  // by guest name: the state printed last
  for (const v1::Guest& g : r.guests()) {
    io.err << g.name() << ": creating in pool " << g.pool() << " (waiting up to "
           << ShortDuration(timeout) << "; --no-wait returns at once)\n";
    said[g.name()] = "creating";
  }
  io.err.flush();
  while (true) {
    absl::StatusOr<v1::ListPoolsResponse> pools;
    RETURN_IF_ERROR(reconnector.Run([&] {
      pools = fleet.ListPools();
      if (pools.ok()) reconnector.Connected();
      return pools.status();
    }));
    absl::Time now = io.now();
    std::vector<std::string> failures;
    bool settled = true;
    for (v1::Guest& g : *r.mutable_guests()) {
      GuestStanding st = StandingOf(g, *pools, now);
      for (const v1::Pool& p : pools->pools()) {
        for (const v1::Guest& fresh : p.guests()) {
          if (fresh.host_id() == g.host_id()) g = fresh;
        }
      }
      if (st.failed) failures.push_back(absl::StrCat(g.name(), ": ", st.error));
      settled = settled && st.settled;
      if (said[g.name()] == st.state) continue;
      said[g.name()] = st.state;
      io.err << g.name() << ": " << st.state;
      if (st.state == "registered") io.err << " " << ShortDuration(now - start) << " after bringup";
      // One guest's error is kctl's last line anyway; among several, say which is which.
      if (st.failed && r.guests_size() > 1) io.err << ": " << st.error;
      io.err << "\n";
    }
    io.err.flush();
    if (settled && failures.empty()) return kExitOk;
    if (settled) {
      return WithExitCode(
          absl::FailedPreconditionError(absl::StrCat(
              "bringup: ",
              failures.size() == 1
                  ? ""
                  : absl::StrCat(failures.size(), " of ", r.guests_size(), " guests failed: "),
              absl::StrJoin(failures, "; "))),
          kExitInfraError);
    }
    if (now - start >= timeout) {
      std::vector<std::string> waiting;
      for (const v1::Guest& g : r.guests()) {
        if (said[g.name()] != "registered") waiting.push_back(g.name() + " " + said[g.name()]);
      }
      return WithExitCode(
          absl::DeadlineExceededError(absl::StrCat(
              "bringup: still waiting after ", ShortDuration(timeout),
              " (--timeout): ", absl::StrJoin(waiting, ", "),
              "; the controller goes on: follow it with kctl pools, or give up with kctl destroy")),
          kExitTimeout);
    }
    io.sleep(kBringupPoll);
  }
}

absl::StatusOr<int> RunBringup(const Invocation& inv, Context& ctx) {
  uint32_t count = 1;
  if (inv.Has("count") && (!absl::SimpleAtoi(inv.Get("count"), &count) || count == 0)) {
    return absl::InvalidArgumentError("bringup: --count: expected a positive number");
  }
  absl::Duration timeout = kDefaultBringupTimeout;
  if (inv.Has("timeout")) {
    absl::StatusOr<absl::Duration> d = ParseDuration(inv.Get("timeout"));
    if (!d.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("bringup: --timeout: ", d.status().message()));
    }
    timeout = *d;
  }
  bool json = inv.globals.output == OutputFormat::kJson;
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::BringupResponse r, fleet->Bringup(inv.args[0], count));
  if (inv.Has("no-wait")) {
    if (json) return PrintJson(r, ctx);
    for (const v1::Guest& g : r.guests()) {
      ctx.io.out << "creating " << g.name() << " in pool " << g.pool()
                 << " (watch it with: kctl pools; kctl hosts)\n";
    }
    return kExitOk;
  }
  absl::StatusOr<int> waited = WaitForGuests(r, timeout, *fleet, ctx);
  // The guests as they ended up, also when the bring-up failed (the error follows on stderr).
  if (json) {
    ASSIGN_OR_RETURN(std::string text, ToJson(r, JsonStyle::kPretty));
    ctx.io.out << text;
  } else if (waited.ok()) {
    for (const v1::Guest& g : r.guests()) ctx.io.out << g.name() << "\n";
  }
  return waited;
}

absl::StatusOr<int> RunDestroy(const Invocation& inv, Context& ctx) {
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::DestroyResponse r, fleet->Destroy(inv.args[0]));
  if (inv.globals.output == OutputFormat::kJson) return PrintJson(r, ctx);
  if (r.destroyed().empty()) ctx.io.out << "pool " << inv.args[0] << " has no guests\n";
  for (const std::string& name : r.destroyed()) ctx.io.out << "destroyed " << name << "\n";
  return kExitOk;
}

absl::StatusOr<int> RunReboot(const Invocation& inv, Context& ctx) {
  absl::StatusOr<v1::HostSelector> selector =
      BuildHostSelector(false, inv.GetAll("host"), inv.GetAll("label"));
  if (!selector.ok()) {
    return absl::Status(selector.status().code(),
                        absl::StrCat("reboot: ", selector.status().message()));
  }
  v1::JobSpec spec;
  spec.set_name("reboot");
  *spec.mutable_hosts() = *std::move(selector);
  v1::Step* step = spec.add_steps();
  step->mutable_reboot()->set_cmdline(inv.Get("cmdline"));
  if (inv.Has("timeout")) {
    absl::StatusOr<absl::Duration> d = ParseDuration(inv.Get("timeout"));
    if (!d.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("reboot: --timeout: ", d.status().message()));
    }
    step->set_timeout(inv.Get("timeout"));
  }
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::Job job, fleet->SubmitJob(spec));
  bool json = inv.globals.output == OutputFormat::kJson;
  if (!json)
    ctx.io.err << "job " << job.id() << ": rebooting " << job.commands_size() << " hosts\n";
  v1::Job last = job;
  // Rebooting takes minutes; a broken watch is followed by one last look at the job.
  absl::Status watched = fleet->WatchJob(job.id(), [&](const v1::Job& j) {
    last = j;
    return absl::OkStatus();
  });
  if (!watched.ok() || last.state() != v1::JOB_DONE) {
    ASSIGN_OR_RETURN(last, fleet->GetJob(job.id()));
  }
  if (json) {
    ASSIGN_OR_RETURN(std::string text, ToJson(last, JsonStyle::kPretty));
    ctx.io.out << text;
  } else {
    for (const v1::CommandInfo& c : last.commands()) ctx.io.out << CommandSummary(c) << "\n";
  }
  if (last.state() != v1::JOB_DONE) {
    return absl::UnavailableError(
        absl::StrCat("reboot: lost track of job ", job.id(), ": see kctl job ", job.id()));
  }
  return ExitCodeForVerdict(last.verdict());
}

std::vector<std::pair<int, std::string>> CommonExits() {
  return {{kExitOk, ""}, {kExitUsage, ""}, {kExitUnreachable, ""}, {kExitNotFound, ""}};
}

}  // namespace

std::string RenderPools(const v1::ListPoolsResponse& pools, absl::Time now) {
  Table table({"POOL", "PROVIDER", "IMAGE", "CPUS", "MEMORY", "SIZE", "GUESTS", "WAITING",
               "IDLE-TIMEOUT", "FAILED"});
  for (const v1::Pool& p : pools.pools()) {
    table.AddRow({p.name(), p.provider(), p.image(), absl::StrCat(p.cpus()),
                  FormatBytes(p.memory_mib() << 20), absl::StrCat(p.min(), "..", p.max()),
                  absl::StrCat(p.guests_size()), absl::StrCat(p.waiting_commands()),
                  ShortDuration(absl::Milliseconds(p.idle_timeout_ms())),
                  absl::StrCat(p.failed_attempts())});
  }
  std::string out = table.Render();
  // A pool's trouble: the controller's last error in full, below the table it would not fit in.
  for (const v1::Pool& p : pools.pools()) {
    if (p.last_error().empty()) continue;
    std::string head = absl::StrCat("\nPool ", p.name(), ": ");
    if (p.failed_attempts() > 0) {
      absl::StrAppend(
          &head, p.failed_attempts(),
          p.failed_attempts() == 1 ? " failed attempt, " : " failed attempts in a row, ",
          "the last ");
    } else {
      absl::StrAppend(&head, "last error ");
    }
    absl::StrAppend(&head, FormatAgo(p.last_error_unix_ms(), now));
    if (!p.last_error_guest().empty()) absl::StrAppend(&head, " (", p.last_error_guest(), ")");
    if (p.next_attempt_unix_ms() != 0) {
      absl::Duration in = absl::FromUnixMillis(p.next_attempt_unix_ms()) - now;
      absl::StrAppend(&head, "; next in ",
                      in > absl::ZeroDuration() ? ShortDuration(in) : std::string("a moment"));
    }
    absl::StrAppend(&out, head, ":\n  ", OneLine(p.last_error()), "\n");
  }
  Table guests({"GUEST", "POOL", "STATE", "ACCEL", "HOST-ID", "AGE", "DETAIL"});
  bool any = false;
  for (const v1::Pool& p : pools.pools()) {
    for (const v1::Guest& g : p.guests()) {
      any = true;
      guests.AddRow({g.name(), g.pool(),
                     g.state() == "running" && g.registered_unix_ms() == 0 ? "booting" : g.state(),
                     g.accel(), g.host_id(), FormatAgo(g.created_unix_ms(), now), g.detail()});
    }
  }
  if (any) absl::StrAppend(&out, "\n", guests.Render());
  return out;
}

CommandSpec PoolsCommand() {
  return CommandSpec{
      .name = "pools",
      .synopsis = "pools [-o table|json]",
      .summary = "list pools of guests and their guests",
      .description =
          "Lists the pools the controller's config declares (or the default pool, local: libvirt, "
          "the tiny image, 1 vCPU, 512 MiB, 0..2 guests, idle timeout 10m), with their size range, "
          "how many guests they have, how many commands wait for one of their hosts, and FAILED: "
          "how many bring-up attempts of the pool failed in a row. Then lists the guests: "
          "creating (the provider is making it; a DETAIL says why the last attempt failed and "
          "that the controller tries again), booting (made, its agent has not registered yet), "
          "running, failed (DETAIL says why).\n\n"
          "A pool that failed since a guest of it last came up gets a paragraph below the "
          "tables with how many bring-up attempts failed in a row, when the last error came "
          "and about which guest, when the next attempt is due, and the controller's error in "
          "full:\n\n"
          "    Pool local: 4 failed attempts in a row, the last 3s ago (local-1); next in 5s:\n"
          "      building the tiny image: the image recipe deploy/image/tiny/build.sh was ...\n\n"
          "The controller tries again after 1s, doubling to 5m; a guest that registers clears "
          "the error. kctl events --kind guest_failed has its history.\n\n"
          "With -o json, {\"pools\": [...]} with the fields of the Pool message, among them "
          "last_error, last_error_guest, last_error_unix_ms, failed_attempts and "
          "next_attempt_unix_ms (left out when there is no trouble).",
      .exit_codes = CommonExits(),
      .examples =
          "kctl pools\nkctl pools -o json | jq '.pools[].guests[].name'\n"
          "kctl pools -o json | jq -r '.pools[] | select(.last_error) | .last_error'\n",
      .run = &RunPools,
  };
}

CommandSpec BringupCommand() {
  return CommandSpec{
      .name = "bringup",
      .synopsis = "bringup POOL [--count N] [--timeout DURATION] [--no-wait] [-o table|json]",
      .summary = "start guests in a pool and wait until they registered",
      .description =
          "Asks the controller for N more guests in POOL (default 1), up to the pool's max. The "
          "controller answers with the new guests' names (POOL-1, POOL-2, ...), builds the "
          "pool's image on first use, creates the guests through the pool's provider, and each "
          "guest's agent registers as a host of that name carrying the pool's labels (pool=POOL "
          "and those configured).\n\n"
          "kctl then follows those guests, asking the controller every second, and says on "
          "stderr how each moves along (creating, booting, registered, failed), until every one "
          "registered or failed, or --timeout passed. Once all registered it prints their names "
          "on stdout, one a line, and exits 0. A guest fails when an attempt to bring it up "
          "fails (its image cannot be built, the provider cannot be opened or cannot create "
          "it, its enrolment fails), when its agent does not register within the pool's boot "
          "timeout, or when its pool failed since the guest was asked for; kctl prints the "
          "controller's error and exits 6. The controller keeps trying a guest that was not "
          "made yet, after 1s, 2s, 4s ... up to every 5m; kctl destroy GUEST stops it, and kctl "
          "pools and kctl events --kind guest_failed show the attempts. A bring-up asked for "
          "while the pool waits to try again is tried at once.\n\n"
          "With --no-wait, kctl returns as soon as the controller has recorded the guests. "
          "Ctrl-C stops the waiting, not the bring-up. With -o json, kctl prints {\"guests\": "
          "[...]} with the fields of the Guest message as the controller last reported them "
          "(also when it failed; the error goes to stderr).\n\n"
          "Pools also grow by themselves when commands wait for their labels (kctl exec -l "
          "pool=POOL --count N).",
      .flags = {{.name = "count", .value_name = "N", .help = "How many guests (default 1)."},
                {.name = "timeout",
                 .value_name = "DURATION",
                 .help = "How long to wait for the guests to register (default 15m: building "
                         "an image and booting without KVM take minutes)."},
                {.name = "no-wait",
                 .help = "Return once the controller has recorded the guests; follow them with "
                         "kctl pools."}},
      .min_args = 1,
      .max_args = 1,
      .args_hint = "the pool's name (see kctl pools)",
      .exit_codes = {{kExitOk, "every guest registered (with --no-wait: they are being created)"},
                     {kExitUsage, "over the pool's max, or a bad --count or --timeout"},
                     {kExitUnreachable, ""},
                     {kExitTimeout, "a guest had not registered when --timeout passed"},
                     {kExitInfraError, "a guest failed to come up (the error says why)"},
                     {kExitNotFound, "no such pool"}},
      .examples =
          "kctl bringup local\nkctl bringup local --count 2 --timeout 30m && kctl pools\n"
          "kctl bringup local --no-wait\n",
      .run = &RunBringup,
  };
}

CommandSpec DestroyCommand() {
  return CommandSpec{
      .name = "destroy",
      .synopsis = "destroy (HOST | POOL)",
      .summary = "destroy a guest, or every guest of a pool",
      .description =
          "Destroys the guest HOST, or every guest of POOL, through its provider: the domain, its "
          "overlay, disks and console file are removed and the host is forgotten. Commands still "
          "running there end as INFRA_ERROR (lost). Waits until done.",
      .min_args = 1,
      .max_args = 1,
      .args_hint = "a guest's host name or a pool's name",
      .exit_codes = CommonExits(),
      .examples = "kctl destroy local-2\nkctl destroy local\n",
      .run = &RunDestroy,
  };
}

CommandSpec RebootCommand() {
  return CommandSpec{
      .name = "reboot",
      .synopsis = "reboot (--host NAME... | -l KEY=VALUE...) [--timeout DURATION]",
      .summary = "reboot hosts for real and wait until they registered again",
      .description =
          "Submits a job with a reboot step. Each host's agent records the reboot, syncs and "
          "reboots the machine; the step passes when the agent registers again with a new boot "
          "id, and the time from reboot to registration is shown. A host that does not come back "
          "within --timeout (default 5m) is power-cycled through its pool's provider, and the "
          "step's verdict is BOOT_FAILED with the serial console kept as the command's console "
          "log (kctl logs COMMAND --stream console).\n\n"
          "Agents reboot their machine only when started with --allow-reboot (guest images do); "
          "on any other host the step is refused as INFRA_ERROR.",
      .flags =
          {
              {.name = "host",
               .value_name = "NAME",
               .help = "Reboot this host (NAME or N1,N2).",
               .repeatable = true},
              {.name = "label",
               .short_name = 'l',
               .value_name = "KEY=VALUE",
               .help = "Reboot every online host carrying all the given labels.",
               .repeatable = true},
              {.name = "timeout",
               .value_name = "DURATION",
               .help = "How long a host may take to register again (default 5m)."},
              {.name = "cmdline",
               .value_name = "ARGS",
               .help = "Boot this once with ARGS added to the kernel command line (guests of "
                       "the tiny image): the controller resets the guest into it; a later "
                       "power-cycle boots the usual command line. E.g. rdinit=/bin/false makes the "
                       "boot fail on purpose."},
          },
      .exit_codes = {{kExitOk, "every host came back"},
                     {kExitUsage, ""},
                     {kExitUnreachable, ""},
                     {kExitBootFailed, "a host did not come back before the deadline"},
                     {kExitInfraError, "a host refused to reboot or was lost"},
                     {kExitNotFound, "no such host"}},
      .examples = "kctl reboot --host local-1\nkctl reboot -l pool=local --timeout 3m\n",
      .run = &RunReboot,
  };
}

}  // namespace kfleet::cli

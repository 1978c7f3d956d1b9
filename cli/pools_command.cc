#include "cli/pools_command.h"

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/host_selector.h"
#include "cli/job_view.h"
#include "cli/json.h"
#include "cli/table.h"
#include "common/duration.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

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

absl::StatusOr<int> RunBringup(const Invocation& inv, Context& ctx) {
  uint32_t count = 1;
  if (inv.Has("count") && (!absl::SimpleAtoi(inv.Get("count"), &count) || count == 0)) {
    return absl::InvalidArgumentError("bringup: --count: expected a positive number");
  }
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::BringupResponse r, fleet->Bringup(inv.args[0], count));
  if (inv.globals.output == OutputFormat::kJson) return PrintJson(r, ctx);
  for (const v1::Guest& g : r.guests()) {
    ctx.io.out << "creating " << g.name() << " in pool " << g.pool()
               << " (watch it with: kctl pools; kctl hosts)\n";
  }
  return kExitOk;
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
  Table table(
      {"POOL", "PROVIDER", "IMAGE", "CPUS", "MEMORY", "SIZE", "GUESTS", "WAITING", "IDLE-TIMEOUT"});
  for (const v1::Pool& p : pools.pools()) {
    table.AddRow({p.name(), p.provider(), p.image(), absl::StrCat(p.cpus()),
                  FormatBytes(p.memory_mib() << 20), absl::StrCat(p.min(), "..", p.max()),
                  absl::StrCat(p.guests_size()), absl::StrCat(p.waiting_commands()),
                  ShortDuration(absl::Milliseconds(p.idle_timeout_ms()))});
  }
  std::string out = table.Render();
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
          "how many guests they have and how many commands wait for one of their hosts. Then "
          "lists the guests: creating (the provider is making it), booting (made, its agent has "
          "not registered yet), running, failed (DETAIL says why).",
      .exit_codes = CommonExits(),
      .examples = "kctl pools\nkctl pools -o json | jq '.pools[].guests[].name'\n",
      .run = &RunPools,
  };
}

CommandSpec BringupCommand() {
  return CommandSpec{
      .name = "bringup",
      .synopsis = "bringup POOL [--count N]",
      .summary = "start guests in a pool",
      .description =
          "Asks the controller for N more guests in POOL (default 1), up to the pool's max. "
          "Returns at once: the controller builds the pool's image on first use, creates the "
          "guests through the pool's provider, and each guest's agent registers as a host named "
          "POOL-N carrying the pool's labels (pool=POOL and those configured). Follow it with "
          "kctl pools and kctl hosts. Pools also grow by themselves when commands wait for their "
          "labels (kctl exec -l pool=POOL --count N).",
      .flags = {{.name = "count", .value_name = "N", .help = "How many guests (default 1)."}},
      .min_args = 1,
      .max_args = 1,
      .args_hint = "the pool's name (see kctl pools)",
      .exit_codes = {{kExitOk, "the guests are being created"},
                     {kExitUsage, "over the pool's max, or a bad --count"},
                     {kExitUnreachable, ""},
                     {kExitNotFound, "no such pool"}},
      .examples = "kctl bringup local\nkctl bringup local --count 2 && kctl pools\n",
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

#include "cli/hosts_command.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/access_commands.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json.h"
#include "cli/suggest.h"
#include "cli/table.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

// As the controller decides (controller/api/fleet_service.h, IsBuilder): builders run kernel
// builds, and `kctl exec --all` leaves them out.
bool IsBuilder(const v1::Host& host) {
  auto role = host.labels().find("role");
  return role != host.labels().end() && role->second == "builder";
}

// {"hosts": [...]} with the Host fields in their order, plus "builder": true last on builders.
absl::StatusOr<std::string> HostsJson(const v1::ListHostsResponse& hosts) {
  ASSIGN_OR_RETURN(std::string text, ToJson(hosts, JsonStyle::kLine));
  nlohmann::ordered_json doc =
      nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return absl::InternalError("cannot print the hosts as JSON");
  auto list = doc.find("hosts");
  for (int i = 0; list != doc.end() && i < hosts.hosts_size(); ++i) {
    if (IsBuilder(hosts.hosts(i)) && list->at(i).is_object()) list->at(i)["builder"] = true;
  }
  return absl::StrCat(doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace),
                      "\n");
}

absl::StatusOr<int> RunHosts(const Invocation& inv, Context& ctx) {
  if (!inv.args.empty()) {
    const std::string& sub = inv.args[0];
    if (sub != "revoke") {
      return absl::InvalidArgumentError(absl::StrCat(
          "hosts: unexpected argument \"", sub, "\"", DidYouMean(sub, {"revoke"}),
          ": kctl hosts lists the hosts; kctl hosts revoke NAME revokes one's certificates"));
    }
    if (inv.args.size() != 2) {
      return absl::InvalidArgumentError(
          "hosts revoke: missing NAME, the host's name or id; kctl hosts lists them");
    }
    return RunRevoke(RevokeKind::kHost, inv.args[1], inv.globals.output, ctx);
  }
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  absl::StatusOr<v1::ListHostsResponse> hosts = fleet->ListHosts();
  if (!hosts.ok()) return hosts.status();
  std::sort(hosts->mutable_hosts()->begin(), hosts->mutable_hosts()->end(),
            [](const v1::Host& a, const v1::Host& b) { return a.name() < b.name(); });
  if (inv.globals.output == OutputFormat::kJson) {
    absl::StatusOr<std::string> json = HostsJson(*hosts);
    if (!json.ok()) return json.status();
    ctx.io.out << *json;
    return kExitOk;
  }
  if (hosts->hosts().empty()) {
    ctx.io.err << "No hosts have registered with the controller at " << fleet->address()
               << " yet.\n";
    return kExitOk;
  }
  ctx.io.out << RenderHostsTable(*hosts, inv.globals.output == OutputFormat::kWide, ctx.io.now());
  return kExitOk;
}

}  // namespace

std::string RenderHostsTable(const v1::ListHostsResponse& hosts, bool wide, absl::Time now) {
  std::vector<std::string> headers = {"NAME", "STATE", "KIND", "LABELS", "KERNEL", "LAST-SEEN"};
  if (wide) headers.insert(headers.end(), {"ID", "CPUS", "MEMORY", "AGENT", "OS"});
  Table table(headers);
  std::vector<const v1::Host*> sorted;
  for (const v1::Host& h : hosts.hosts()) sorted.push_back(&h);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const v1::Host* a, const v1::Host* b) { return a->name() < b->name(); });
  for (const v1::Host* h : sorted) {
    std::vector<std::string> row = {h->name(),
                                    HostStateName(h->state()),
                                    IsBuilder(*h) ? "builder" : "test",
                                    FormatLabels(h->labels()),
                                    h->facts().kernel_release(),
                                    FormatAgo(h->last_seen_unix_ms(), now)};
    if (wide) {
      row.insert(row.end(),
                 {h->id(), h->facts().cpus() ? absl::StrCat(h->facts().cpus()) : "",
                  h->facts().memory_bytes() ? FormatBytes(h->facts().memory_bytes()) : "",
                  h->agent_version(), h->facts().os()});
    }
    table.AddRow(std::move(row));
  }
  return table.Render();
}

CommandSpec HostsCommand() {
  return CommandSpec{
      .name = "hosts",
      .synopsis = "hosts [-o table|wide|json] | hosts revoke NAME [-o table|json]",
      .summary = "list hosts: name, state, kind, labels, kernel, last seen; or revoke one",
      .description =
          "Lists every host that has registered with the controller, sorted by name.\n\n"
          "STATE is online, offline (three heartbeats missed), rebooting or draining. KIND is "
          "builder for a host labelled role=builder (the controller's own local-builder among "
          "them), where kernel builds run and which kctl exec --all leaves out, else test. KERNEL "
          "is the running kernel's release as the agent last reported it. LAST-SEEN is the time "
          "since the controller last heard from the host's agent.\n\n"
          "With -o wide, the table adds the host's id, CPU count, memory, agent version and "
          "operating system (last, as it contains blanks). With -o json, kctl prints one document, "
          "{\"hosts\": [...]}, with the fields of the Host message (proto field names; fields with "
          "default values left out) and \"builder\": true on builders.\n\n"
          "kctl hosts revoke NAME (role admin) revokes the certificates of the host with that "
          "name or id and ends its agent's sessions at once: the agent can no longer connect "
          "and must enrol again with a new token (kctl token create). kctl prints the revoked "
          "certificates' serials and how many sessions ended; with -o json, the RevokeResponse.",
      .max_args = 2,
      .args_hint = "revoke NAME",
      .exit_codes = {{kExitOk, "the hosts were listed (also when there are none), or revoked"},
                     {kExitUsage, ""},
                     {kExitUnreachable, ""},
                     {kExitNotFound, "hosts revoke: no such host"},
                     {kExitDenied, "not authenticated, or the role does not allow it"}},
      .examples =
          "kctl hosts\n"
          "kctl hosts -o wide\n"
          "# names of the online hosts\n"
          "kctl hosts -o json | jq -r '.hosts[] | select(.state == \"ONLINE\") | .name'\n"
          "# a host that must not connect again\n"
          "kctl hosts revoke mail\n",
      .run = &RunHosts,
  };
}

}  // namespace kfleet::cli

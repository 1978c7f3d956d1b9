#include "cli/access_commands.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/access_view.h"
#include "cli/exit_codes.h"
#include "cli/host_selector.h"
#include "cli/json.h"
#include "cli/suggest.h"
#include "common/duration.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

constexpr uint32_t kMaxUses = 10000;
constexpr uint32_t kMaxAuditLimit = 10000;

absl::StatusOr<uint32_t> ParseCount(const Invocation& inv, absl::string_view command,
                                    absl::string_view flag, uint32_t max) {
  uint32_t n = 0;
  std::string text = inv.Get(flag);
  if (!absl::SimpleAtoi(text, &n) || n == 0 || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(command, ": --", flag, ": \"", text, "\" is not a number from 1 to ", max));
  }
  return n;
}

absl::Status CheckDuration(const Invocation& inv, absl::string_view command,
                           absl::string_view flag) {
  absl::StatusOr<absl::Duration> d = ParseDuration(inv.Get(flag));
  if (d.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(command, ": --", flag, ": ", d.status().message()));
}

absl::StatusOr<int> RunTokenCreate(const Invocation& inv, Context& ctx) {
  v1::CreateTokenRequest request;
  for (const std::string& labels : inv.GetAll("labels")) {
    absl::Status s = MergeLabels(labels, request.mutable_labels());
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("token create: ", s.message()));
    }
  }
  if (inv.Has("ttl")) {
    RETURN_IF_ERROR(CheckDuration(inv, "token create", "ttl"));
    request.set_ttl(inv.Get("ttl"));
  }
  if (inv.Has("uses")) {
    ASSIGN_OR_RETURN(uint32_t uses, ParseCount(inv, "token create", "uses", kMaxUses));
    request.set_uses(uses);
  }
  if (inv.Has("name")) {
    if (inv.Get("name").empty()) {
      return absl::InvalidArgumentError(
          "token create: --name needs the host name the token is for, e.g. --name mail");
    }
    request.set_name(inv.Get("name"));
  }

  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::CreateTokenResponse token, fleet->access().CreateToken(request));
  std::string agent = AgentCommandLine(fleet->address(), token, request.name());
  if (inv.globals.output == OutputFormat::kJson) {
    std::vector<std::pair<std::string, std::string>> extra = {{"agent_command", agent}};
    if (!request.name().empty()) extra.push_back({"name", request.name()});
    ASSIGN_OR_RETURN(std::string json, ToJsonWith(token, extra));
    ctx.io.out << json;
    return kExitOk;
  }
  ctx.io.out << RenderToken(token, request.name(), agent, ctx.io.now(), ctx.io.tz);
  return kExitOk;
}

absl::StatusOr<int> RunToken(const Invocation& inv, Context& ctx) {
  const std::string& sub = inv.args[0];
  if (sub != "create") {
    return absl::InvalidArgumentError(absl::StrCat("token: unknown subcommand \"", sub, "\"",
                                                   DidYouMean(sub, {"create"}),
                                                   "; kctl token create makes an enrolment token"));
  }
  return RunTokenCreate(inv, ctx);
}

absl::StatusOr<int> RunAudit(const Invocation& inv, Context& ctx) {
  v1::ListAuditRequest request;
  if (inv.Has("since")) {
    absl::StatusOr<absl::Duration> since = ParseDuration(inv.Get("since"));
    if (!since.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("audit: --since: ", since.status().message()));
    }
    request.set_since_unix_ms(absl::ToUnixMillis(ctx.io.now() - *since));
  }
  if (inv.Has("limit")) {
    ASSIGN_OR_RETURN(uint32_t limit, ParseCount(inv, "audit", "limit", kMaxAuditLimit));
    request.set_limit(limit);
  }
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::ListAuditResponse audit, fleet->access().ListAudit(request));
  if (inv.globals.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(std::string json, ToJson(SortedAudit(audit), JsonStyle::kPretty));
    ctx.io.out << json;
    return kExitOk;
  }
  if (audit.entries().empty()) {
    ctx.io.err << "No audit entries"
               << (inv.Has("since") ? absl::StrCat(" in the last ", inv.Get("since")) : "")
               << ".\n";
    return kExitOk;
  }
  ctx.io.out << RenderAuditTable(audit, inv.globals.output == OutputFormat::kWide, ctx.io.tz);
  return kExitOk;
}

absl::StatusOr<int> RunWhoAmI(const Invocation& inv, Context& ctx) {
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::Identity identity, fleet->access().WhoAmI());
  if (inv.globals.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(std::string json, ToJson(identity, JsonStyle::kPretty));
    ctx.io.out << json;
    return kExitOk;
  }
  ctx.io.out << RenderIdentity(identity, ctx.io.tz);
  return kExitOk;
}

}  // namespace

absl::StatusOr<int> RunRevoke(RevokeKind kind, const std::string& name, OutputFormat output,
                              Context& ctx) {
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::RevokeResponse revoked, kind == RevokeKind::kUser
                                                   ? fleet->access().RevokeUser(name)
                                                   : fleet->access().RevokeHost(name));
  if (output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(std::string json, ToJson(revoked, JsonStyle::kPretty));
    ctx.io.out << json;
    return kExitOk;
  }
  ctx.io.out << RenderRevoked(kind == RevokeKind::kUser ? "user" : "host", name, revoked);
  return kExitOk;
}

CommandSpec TokenCommand() {
  return CommandSpec{
      .name = "token",
      .synopsis =
          "token create [-l|--labels KEY=VALUE,...] [--ttl DURATION] [--uses N] "
          "[--name NAME] [-o table|json]",
      .summary = "make an enrolment token for new agents",
      .description =
          "Asks the controller for a short-lived enrolment token (role admin). An agent started "
          "with the token and the fingerprint of the controller's CA sends a certificate request "
          "and gets a certificate of its own; it never needs a file copied to it.\n\n"
          "kctl prints the token, the CA's fingerprint, when the token expires, how many agents "
          "may use it, and the kfleet-agent command line that uses it, with the controller "
          "address kctl used:\n\n"
          "    kfleet-agent --controller 127.0.0.1:7400 --token TOKEN --ca-fingerprint "
          "sha256:HEX\n\n"
          "The controller keeps only a hash of the token, so it is shown this once. An agent "
          "enrolled with it gets the token's labels; with --name, the token is for that host "
          "name only. Agents reached through another address (a guest's forwarded port, another "
          "machine) need that address after --controller.\n\n"
          "With -o json, kctl prints one document: the fields of CreateTokenResponse (token, "
          "ca_fingerprint, expires_unix_ms, uses, labels, ca_pem), name and agent_command.",
      .flags = {{.name = "labels",
                 .short_name = 'l',
                 .value_name = "KEY=VALUE,...",
                 .help = "Labels the enrolled hosts get, e.g. -l pool=lab,role=mail.",
                 .repeatable = true},
                {.name = "ttl",
                 .value_name = "DURATION",
                 .help = "How long the token can be used (default 1h, at most 720h: 30 days)."},
                {.name = "uses",
                 .value_name = "N",
                 .help = "How many agents can enrol with it (default 1, at most 10000)."},
                {.name = "name",
                 .value_name = "NAME",
                 .help = "The one host name the token enrols (the agent's --name)."}},
      .min_args = 1,
      .max_args = 1,
      .args_hint = "the subcommand: kctl token create",
      .exit_codes = {{kExitOk, "the token was made"},
                     {kExitUsage, "bad labels, --ttl or --uses"},
                     {kExitUnreachable, ""},
                     {kExitDenied, "not authenticated, or the role is not admin"}},
      .examples =
          "kctl token create\n"
          "# ten guests of the lab pool, for a day\n"
          "kctl token create -l pool=lab --uses 10 --ttl 24h\n"
          "kctl token create --name mail -l role=mail -o json | jq -r .token\n",
      .run = &RunToken,
  };
}

CommandSpec AuditCommand() {
  return CommandSpec{
      .name = "audit",
      .synopsis = "audit [--since DURATION] [--limit N] [-o table|wide|json]",
      .summary = "show the audit log: who changed what, and what was refused",
      .description =
          "Prints the controller's audit log (role admin): every change made through the admin "
          "API and every refused call, oldest first, newest last: TIME WHO ROLE METHOD TARGET "
          "RESULT.\n\n"
          "WHO is a user name, or a host id for an agent (\"insecure\" for plaintext callers on "
          "loopback); ROLE is admin, operator, viewer, agent or none; METHOD the call, e.g. "
          "FleetService/SubmitJob; TARGET what it acted on (a job id, a host, a user); RESULT OK, "
          "or the status code and message of a refusal.\n\n"
          "With -o wide, PEER (the caller's address) is added before RESULT. With -o json, kctl "
          "prints one document, {\"entries\": [...]}, oldest first, with the fields of "
          "AuditEntry.",
      .flags = {{.name = "since",
                 .value_name = "DURATION",
                 .help = "Only entries of the last DURATION, e.g. 1h or 168h (a week)."},
                {.name = "limit",
                 .value_name = "N",
                 .help = "At most N entries, the newest (default 200, at most 10000)."}},
      .exit_codes = {{kExitOk, "the entries were printed (also when there are none)"},
                     {kExitUsage, "a bad --since or --limit"},
                     {kExitUnreachable, ""},
                     {kExitDenied, "not authenticated, or the role is not admin"}},
      .examples =
          "kctl audit --since 1h\n"
          "# refused calls of the last day\n"
          "kctl audit --since 24h -o json | jq -r '.entries[] | select(.result != \"OK\")'\n",
      .run = &RunAudit,
  };
}

CommandSpec WhoAmICommand() {
  return CommandSpec{
      .name = "whoami",
      .synopsis = "whoami [-o table|json]",
      .summary = "show who the controller takes kctl for: name, role, certificate",
      .description =
          "Asks the controller who it takes kctl for, from the certificate kctl presented: KIND "
          "(user; insecure for a plaintext connection; none without a certificate), NAME, ROLE "
          "(admin, operator or viewer), the certificate's SERIAL and when it EXPIRES. Any role "
          "may ask.\n\n"
          "With -o json, kctl prints one document with the fields of Identity.",
      .exit_codes = {{kExitOk, "the controller answered"},
                     {kExitUsage, ""},
                     {kExitUnreachable, ""},
                     {kExitDenied, "the controller did not accept kctl's certificate"}},
      .examples =
          "kctl whoami\n"
          "kctl --config kfleet-alice/kctl.yaml whoami\n",
      .run = &RunWhoAmI,
  };
}

}  // namespace kfleet::cli

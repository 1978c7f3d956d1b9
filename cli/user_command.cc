#include "cli/user_command.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/access_commands.h"
#include "cli/access_view.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json.h"
#include "cli/suggest.h"
#include "cli/user_bundle.h"
#include "common/duration.h"
#include "common/pki.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

constexpr size_t kMaxUserName = 64;

const std::vector<std::string>& Roles() {
  static const auto* const kRoles = new std::vector<std::string>{"admin", "operator", "viewer"};
  return *kRoles;
}

absl::Status CheckRole(const Invocation& inv) {
  if (!inv.Has("role")) {
    return absl::InvalidArgumentError(
        "user create: --role is required: admin, operator or viewer, e.g. kctl user create "
        "alice --role operator");
  }
  std::string role = inv.Get("role");
  for (const std::string& r : Roles()) {
    if (r == role) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("user create: --role: unknown role \"", role, "\"",
                                                 DidYouMean(role, Roles()),
                                                 " (expected admin, operator or viewer)"));
}

// The controller's answer, checked against the key made here before anything is written.
absl::Status CheckIssued(const v1::CreateUserResponse& issued, const std::string& key_pem) {
  std::string problem;
  if (issued.certificate_pem().empty() || issued.ca_pem().empty()) {
    problem = "it sent no certificate or no CA certificate";
  } else if (absl::Status s = pki::CheckKeyMatches(key_pem, issued.certificate_pem()); !s.ok()) {
    problem = absl::StrCat("its certificate is not for the key made here (", s.message(), ")");
  }
  if (problem.empty()) return absl::OkStatus();
  return WithExitCode(absl::InternalError(absl::StrCat(
                          "user create: the controller's answer cannot be used: ", problem)),
                      kExitUnreachable);
}

absl::StatusOr<int> RunUserCreate(const Invocation& inv, Context& ctx) {
  if (inv.args.size() != 2) {
    return absl::InvalidArgumentError(
        "user create: missing NAME, e.g. kctl user create alice --role operator");
  }
  const std::string& name = inv.args[1];
  RETURN_IF_ERROR(CheckUserName(name, "user create"));
  RETURN_IF_ERROR(CheckRole(inv));
  const std::string role = inv.Get("role");
  v1::CreateUserRequest request;
  request.set_name(name);
  request.set_role(role);
  if (inv.Has("ttl")) {
    absl::StatusOr<absl::Duration> ttl = ParseDuration(inv.Get("ttl"));
    if (!ttl.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("user create: --ttl: ", ttl.status().message()));
    }
    request.set_ttl(inv.Get("ttl"));
  }
  std::string dir = inv.Get("out", absl::StrCat("kfleet-", name));
  if (dir.empty()) {
    return absl::InvalidArgumentError("user create: --out needs a directory, e.g. --out ./alice");
  }
  BundleFiles files = BundleFilesFor(dir, name);
  if (absl::Status s = CheckBundleFilesFree(files); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("user create: ", s.message()));
  }

  // The key is made here and only its CSR goes to the controller.
  UserBundle bundle{.name = name, .role = role};
  ASSIGN_OR_RETURN(bundle.key_pem, pki::GenerateKeyPem());
  ASSIGN_OR_RETURN(std::string csr, pki::MakeCsr(bundle.key_pem, pki::Subject{name, role}));
  request.set_csr_pem(csr);

  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::CreateUserResponse issued, fleet->access().CreateUser(request));
  RETURN_IF_ERROR(CheckIssued(issued, bundle.key_pem));
  bundle.controller = fleet->address();
  bundle.server_name = fleet->server_name();
  bundle.cert_pem = issued.certificate_pem();
  bundle.ca_pem = issued.ca_pem();
  if (absl::Status s = WriteBundle(bundle, files); !s.ok()) {
    return WithExitCode(
        absl::Status(
            s.code(),
            absl::StrCat("user create: the controller issued certificate ", issued.serial(), " to ",
                         name, ", but kctl could not write it: ", s.message(),
                         "; revoke it with kctl user revoke ", name, " and try again")),
        kExitUsage);
  }

  std::string use = absl::StrCat("kctl --config ", ShellQuote(files.config), " hosts");
  if (inv.globals.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(std::string json, ToJsonWith(issued, {{"name", name},
                                                           {"role", role},
                                                           {"ca_file", files.ca},
                                                           {"cert_file", files.cert},
                                                           {"key_file", files.key},
                                                           {"config_file", files.config},
                                                           {"use", use}}));
    ctx.io.out << json;
    return kExitOk;
  }
  ctx.io.out << "created user " << name << " (role " << role << "): certificate serial "
             << issued.serial() << ", valid until "
             << FormatTime(issued.not_after_unix_ms(), ctx.io.tz) << "\n"
             << "wrote " << absl::StrJoin({files.ca, files.cert, files.key, files.config}, ", ")
             << "\n"
             << "The key was made here and never sent to the controller: give the directory to "
             << name << " alone. To use it:\n"
             << "  " << use << "\n";
  return kExitOk;
}

absl::StatusOr<int> RunUserRevoke(const Invocation& inv, Context& ctx) {
  if (inv.args.size() != 2) {
    return absl::InvalidArgumentError("user revoke: missing NAME, e.g. kctl user revoke alice");
  }
  for (const char* flag : {"role", "ttl", "out"}) {
    if (inv.Has(flag)) {
      return absl::InvalidArgumentError(
          absl::StrCat("user revoke: --", flag, " is for kctl user create; revoke takes a NAME"));
    }
  }
  RETURN_IF_ERROR(CheckUserName(inv.args[1], "user revoke"));
  return RunRevoke(RevokeKind::kUser, inv.args[1], inv.globals.output, ctx);
}

absl::StatusOr<int> RunUser(const Invocation& inv, Context& ctx) {
  const std::string& sub = inv.args[0];
  if (sub == "create") return RunUserCreate(inv, ctx);
  if (sub == "revoke") return RunUserRevoke(inv, ctx);
  return absl::InvalidArgumentError(
      absl::StrCat("user: unknown subcommand \"", sub, "\"", DidYouMean(sub, {"create", "revoke"}),
                   "; expected kctl user create NAME --role ROLE or kctl user revoke NAME"));
}

}  // namespace

absl::Status CheckUserName(absl::string_view name, absl::string_view command) {
  bool ok = !name.empty() && name.size() <= kMaxUserName &&
            absl::ascii_isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    ok = ok &&
         (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      command, ": invalid user name \"", name, "\": use 1 to ", kMaxUserName,
      " letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. alice)"));
}

CommandSpec UserCommand() {
  return CommandSpec{
      .name = "user",
      .synopsis =
          "user create NAME --role admin|operator|viewer [--ttl DURATION] [--out DIR] | "
          "user revoke NAME",
      .summary = "make a user's certificate and kctl config, or revoke a user",
      .description =
          "kctl user create NAME --role ROLE (role admin) gives a person or a script access to "
          "the controller. kctl makes a private key here, sends the controller a certificate "
          "request for NAME and ROLE (never the key), and writes what the user needs to DIR "
          "(default ./kfleet-NAME, made mode 0700 if missing), each file mode 0600:\n\n"
          "    ca.crt      the controller's CA\n"
          "    NAME.crt    the user's certificate\n"
          "    NAME.key    the user's private key\n"
          "    kctl.yaml   controller: (the address kctl used), ca:, cert:, key:\n\n"
          "and prints the line that uses them: kctl --config DIR/kctl.yaml hosts. kctl never "
          "writes over an existing file: if one of them exists it stops before asking the "
          "controller.\n\n"
          "Roles: admin may do everything, users, tokens and the audit log included; operator "
          "may run jobs and change the fleet; viewer may only look. The certificate is valid "
          "for --ttl (default 8760h, a year; at most five years).\n\n"
          "kctl user revoke NAME (role admin) revokes every certificate of the user: the "
          "controller refuses them from then on. kctl prints the revoked serials and how many "
          "sessions ended.\n\n"
          "With -o json, create prints the fields of CreateUserResponse (certificate_pem, "
          "ca_pem, serial, not_after_unix_ms) with name, role, ca_file, cert_file, key_file, "
          "config_file and use; revoke prints the RevokeResponse (serials, sessions_ended).",
      .flags = {{.name = "role",
                 .value_name = "ROLE",
                 .help = "create: admin, operator or viewer. Required."},
                {.name = "ttl",
                 .value_name = "DURATION",
                 .help = "create: how long the certificate is valid (default 8760h, a year)."},
                {.name = "out",
                 .value_name = "DIR",
                 .help = "create: the directory to write the files to (default ./kfleet-NAME)."}},
      .min_args = 1,
      .max_args = 2,
      .args_hint = "the subcommand: kctl user create NAME --role ROLE, or kctl user revoke NAME",
      .exit_codes = {{kExitOk, "the user was created, or revoked"},
                     {kExitUsage,
                      "a bad name, role or --ttl, a file that exists already, or "
                      "files that could not be written"},
                     {kExitUnreachable, ""},
                     {kExitNotFound, "revoke: no such user"},
                     {kExitDenied, "not authenticated, or the role is not admin"}},
      .examples =
          "kctl user create alice --role operator\n"
          "kctl --config kfleet-alice/kctl.yaml whoami\n"
          "kctl user create ci --role viewer --ttl 720h --out /etc/kfleet/ci\n"
          "kctl user revoke alice\n",
      .run = &RunUser,
  };
}

}  // namespace kfleet::cli

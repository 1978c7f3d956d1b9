#include "controller/security/access_control.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/pki.h"

namespace kfleet::controller {
namespace {

constexpr size_t kMaxParsedCertificates = 4096;

bool Allows(const Identity& who, Permission permission) {
  if (who.kind == "insecure") return true;
  switch (permission) {
    case Permission::kAnyone:
      return true;
    case Permission::kAgent:
      return who.is_agent();
    case Permission::kAgentOrRead:
      return who.is_agent() || IsUserRole(who.role);
    case Permission::kRead:
      return IsUserRole(who.role);
    case Permission::kOperate:
      return who.role == kRoleAdmin || who.role == kRoleOperator;
    case Permission::kAdmin:
      return who.role == kRoleAdmin;
  }
  return false;
}

const char* Needed(Permission permission) {
  switch (permission) {
    case Permission::kAnyone:
      return "nothing";
    case Permission::kAgent:
      return "an agent certificate";
    case Permission::kAgentOrRead:
    case Permission::kRead:
      return "role viewer, operator or admin";
    case Permission::kOperate:
      return "role operator or admin";
    case Permission::kAdmin:
      return "role admin";
  }
  return "?";
}

}  // namespace

std::string Identity::Describe() const {
  if (kind == "insecure" || kind == "none") return kind;
  return absl::StrCat(kind, ":", name);
}

bool IsUserRole(absl::string_view role) {
  return role == kRoleAdmin || role == kRoleOperator || role == kRoleViewer;
}

AccessControl::AccessControl(AccessStore* store, bool insecure)
    : store_(store), insecure_(insecure) {}

absl::Status AccessControl::Load() {
  absl::StatusOr<std::vector<std::string>> serials = store_->RevokedSerials();
  if (!serials.ok()) return serials.status();
  MarkRevoked(*serials);
  return absl::OkStatus();
}

void AccessControl::MarkRevoked(const std::vector<std::string>& serials) {
  absl::MutexLock lock(&mu_);
  for (const std::string& s : serials) revoked_.insert(s);
}

bool AccessControl::IsRevoked(const std::string& serial) const {
  absl::MutexLock lock(&mu_);
  return revoked_.contains(serial);
}

absl::Status AccessControl::CheckHandshake(absl::string_view pem) const {
  if (pem.empty()) return absl::OkStatus();
  absl::StatusOr<pki::CertInfo> cert = pki::ParseCertificate(pem);
  if (!cert.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("unreadable client certificate: ", cert.status().message()));
  }
  if (IsRevoked(cert->serial)) {
    return absl::UnauthenticatedError(absl::StrCat("certificate ", cert->serial, " (",
                                                   cert->subject.common_name, ") was revoked"));
  }
  const std::string& role = cert->subject.organizational_unit;
  if (role != kRoleAgent && !IsUserRole(role)) {
    return absl::UnauthenticatedError(absl::StrCat("certificate ", cert->serial, " (",
                                                   cert->subject.common_name,
                                                   ") carries no kfleet role (OU \"", role, "\")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Identity> AccessControl::IdentityOf(const grpc::ServerContextBase& ctx) const {
  Identity who;
  who.peer = ctx.peer();
  if (insecure_) {
    who.kind = "insecure";
    who.role = kRoleAdmin;
    return who;
  }
  who.kind = "none";
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr) return who;
  std::vector<grpc::string_ref> pems = auth->FindPropertyValues("x509_pem_cert");
  if (pems.empty()) return who;
  std::string pem(pems[0].data(), pems[0].size());
  {
    absl::MutexLock lock(&mu_);
    auto it = parsed_.find(pem);
    if (it != parsed_.end()) {
      Identity known = it->second;
      known.peer = who.peer;
      return known;
    }
  }
  absl::StatusOr<pki::CertInfo> cert = pki::ParseCertificate(pem);
  if (!cert.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("unreadable client certificate: ", cert.status().message()));
  }
  who.serial = cert->serial;
  who.name = cert->subject.common_name;
  who.role = cert->subject.organizational_unit;
  who.not_after = cert->not_after;
  who.kind = who.role == kRoleAgent ? "agent" : "user";
  absl::MutexLock lock(&mu_);
  if (parsed_.size() >= kMaxParsedCertificates) parsed_.clear();
  parsed_.emplace(std::move(pem), who);
  return who;
}

absl::StatusOr<Identity> AccessControl::Authorize(const grpc::ServerContextBase& ctx,
                                                  Permission permission, absl::string_view method,
                                                  absl::string_view target) {
  absl::StatusOr<Identity> who = IdentityOf(ctx);
  if (!who.ok()) {
    Identity unknown{"none", "", "", "", absl::InfiniteFuture(), ctx.peer()};
    Audit(unknown, method, target, who.status());
    return who.status();
  }
  absl::Status refused;
  if (who->kind == "none" && permission != Permission::kAnyone) {
    refused = absl::UnauthenticatedError(
        "no client certificate: kctl needs the CA, certificate and key of a kfleet user (kctl "
        "--config STATE_DIR/kctl.yaml, or one made by kctl user create); an agent enrols first "
        "(kfleet-agent --token TOKEN --ca-fingerprint sha256:HEX)");
  } else if (!who->serial.empty() && IsRevoked(who->serial)) {
    refused = absl::UnauthenticatedError(absl::StrCat(
        "certificate ", who->serial, " of ", who->Describe(),
        " was revoked: ask an admin for a new one (kctl user create, or a new enrolment token)"));
  } else if (!Allows(*who, permission)) {
    if (who->is_agent()) {
      refused = absl::PermissionDeniedError(absl::StrCat(
          method, ": agent certificates cannot call the admin API (", who->Describe(), ")"));
    } else {
      refused = absl::PermissionDeniedError(absl::StrCat(method, " needs ", Needed(permission),
                                                         "; ", who->Describe(), " has role ",
                                                         who->role.empty() ? "none" : who->role));
    }
  }
  if (!refused.ok()) {
    LogWarning(absl::StrCat("refused ", method, " from ", who->Describe(), " at ", who->peer, ": ",
                            refused.message()));
    Audit(*who, method, target, refused);
    return refused;
  }
  return who;
}

void AccessControl::Audit(const Identity& who, absl::string_view method, absl::string_view target,
                          const absl::Status& result) {
  v1::AuditEntry e;
  e.set_time_unix_ms(absl::ToUnixMillis(absl::Now()));
  e.set_who(who.kind == "agent" || who.kind == "user" ? who.name : who.kind);
  e.set_role(who.role.empty() ? "none" : who.role);
  e.set_method(std::string(method));
  e.set_target(std::string(target.substr(0, 256)));
  e.set_result(result.ok() ? "OK"
                           : absl::StrCat(absl::StatusCodeToString(result.code()), ": ",
                                          result.message().substr(0, 300)));
  e.set_peer(who.peer);
  if (absl::Status s = store_->AppendAudit(e); !s.ok()) {
    LogWarning(absl::StrCat("audit log: ", s.message()));
  }
}

}  // namespace kfleet::controller

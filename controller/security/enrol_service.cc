#include "controller/security/enrol_service.h"

#include <sys/random.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/duration.h"
#include "common/grpc_status.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/pki.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace kfleet::controller {
namespace {

constexpr size_t kMaxTokenChars = 128;
constexpr size_t kMaxCsrBytes = 16 << 10;
constexpr int kMaxLabels = 64;
constexpr absl::Duration kMaxTokenTtl = absl::Hours(24 * 30);
constexpr absl::Duration kDefaultUserTtl = absl::Hours(24 * 365);
constexpr absl::Duration kMaxUserTtl = absl::Hours(24 * 365 * 5);
constexpr char kTokenPrefix[] = "kft1-";

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::string HashToken(absl::string_view token) {
  absl::StatusOr<Sha256> h = Sha256::Create();
  if (!h.ok()) return "";
  h->Update(token);
  return h->FinishHex().value_or("");
}

// Runs `fn(identity)` on the executor once `permission` is granted; calls that change something
// are audited with their result.
template <typename Fn>
grpc::ServerUnaryReactor* Run(const AccessDeps& deps, grpc::CallbackServerContext* ctx,
                              Permission permission, const char* method, std::string target,
                              bool audit, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<Identity> who = deps.access->Authorize(*ctx, permission, method, target);
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  deps.executor->Post([deps, reactor, method, target = std::move(target), audit,
                       who = *std::move(who), fn = std::move(fn)]() mutable {
    absl::Status s = fn(who);
    if (audit) deps.access->Audit(who, method, target, s);
    reactor->Finish(ToGrpcStatus(s));
  });
  return reactor;
}

absl::Status CheckLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.size() > kMaxLabels) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", kMaxLabels, " labels"));
  }
  for (const auto& [k, v] : labels) {
    if (!IsValidId(k) || (!v.empty() && !IsValidId(v))) {
      return absl::InvalidArgumentError(
          absl::StrCat("label \"", k.substr(0, 64), "=", v.substr(0, 64),
                       "\" is not KEY=VALUE of 1-64 characters of [A-Za-z0-9._-] each"));
    }
  }
  return absl::OkStatus();
}

// The CSR of an agent: signed by its key, subject CN = host id (OU agent or none), nothing else.
absl::StatusOr<pki::CsrInfo> CheckAgentCsr(const std::string& pem) {
  if (pem.size() > kMaxCsrBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the CSR is over ", kMaxCsrBytes, " bytes"));
  }
  ASSIGN_OR_RETURN(pki::CsrInfo csr, pki::ParseCsr(pem));
  if (!IsValidId(csr.subject.common_name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the CSR's CN \"", csr.subject.common_name.substr(0, 64),
                     "\" is not a host id (1-64 characters of [A-Za-z0-9._-])"));
  }
  if (!csr.subject.organizational_unit.empty() && csr.subject.organizational_unit != kRoleAgent) {
    return absl::PermissionDeniedError(absl::StrCat("the CSR asks for role \"",
                                                    csr.subject.organizational_unit.substr(0, 64),
                                                    "\": an enrolment token makes agents only"));
  }
  if (!csr.other_subject_fields.empty() || csr.has_extensions) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the CSR carries more than a host id (",
        csr.has_extensions ? "extensions" : absl::StrJoin(csr.other_subject_fields, ", "),
        "): names and labels come from the token, not from the agent"));
  }
  return csr;
}

v1::EnrolResponse Response(const Issued& cert, const std::string& ca_pem,
                           const EnrolledHost& host) {
  v1::EnrolResponse resp;
  resp.set_certificate_pem(cert.pem);
  resp.set_ca_pem(ca_pem);
  resp.set_host_id(host.host_id);
  resp.set_name(host.name);
  for (const auto& [k, v] : host.labels) (*resp.mutable_labels())[k] = v;
  resp.set_not_after_unix_ms(absl::ToUnixMillis(cert.info.not_after));
  return resp;
}

absl::StatusOr<Issued> IssueAgent(const AccessDeps& deps, const pki::CsrInfo& csr,
                                  const EnrolledHost& host) {
  ASSIGN_OR_RETURN(Issued cert, deps.ca->IssueClient(csr.public_key_pem, host.host_id, kRoleAgent,
                                                     deps.ca->agent_ttl()));
  RETURN_IF_ERROR(deps.access_store->RecordCertificate(
      CertRecord{cert.info.serial, "agent", host.name, host.host_id, kRoleAgent, NowMs(),
                 absl::ToUnixMillis(cert.info.not_after)}));
  return cert;
}

absl::StatusOr<absl::Duration> TtlOf(const std::string& text, absl::Duration fallback,
                                     absl::Duration limit, absl::string_view what) {
  if (text.empty()) return fallback;
  absl::StatusOr<absl::Duration> d = ParseDuration(text);
  if (!d.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", d.status().message()));
  if (*d <= absl::ZeroDuration() || *d > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be positive and at most ", ShortDuration(limit)));
  }
  return *d;
}

}  // namespace

absl::StatusOr<NewToken> MakeToken(AccessStore* store, const Labels& labels,
                                   const std::string& name, const std::string& host_id,
                                   int64_t uses, absl::Duration ttl,
                                   const std::string& created_by) {
  unsigned char random[24];
  if (getrandom(random, sizeof random, 0) != sizeof random) {
    return absl::InternalError("getrandom failed");
  }
  NewToken t;
  t.token = absl::StrCat(kTokenPrefix, absl::BytesToHexString(absl::string_view(
                                           reinterpret_cast<const char*>(random), sizeof random)));
  t.expires_ms = absl::ToUnixMillis(absl::Now() + ttl);
  TokenRecord r;
  r.hash = HashToken(t.token);
  r.labels = labels;
  r.name = name;
  r.host_id = host_id;
  r.uses_left = uses;
  r.expires_ms = t.expires_ms;
  r.created_by = created_by;
  RETURN_IF_ERROR(store->CreateToken(r));
  return t;
}

absl::StatusOr<v1::EnrolResponse> Enrol(const AccessDeps& deps, const v1::EnrolRequest& req) {
  if (deps.ca == nullptr) {
    return absl::FailedPreconditionError("this controller serves plaintext: nothing to enrol for");
  }
  if (req.token().empty() || req.token().size() > kMaxTokenChars) {
    return absl::UnauthenticatedError(
        "no enrolment token, or one too long to be real: start the agent with --token TOKEN "
        "from `kctl token create`");
  }
  if (!req.name().empty() && !IsValidId(req.name())) {
    return absl::InvalidArgumentError(absl::StrCat("host name \"", req.name().substr(0, 64),
                                                   "\" is not 1-64 characters of [A-Za-z0-9._-]"));
  }
  RETURN_IF_ERROR(CheckLabels(req.labels()));
  ASSIGN_OR_RETURN(pki::CsrInfo csr, CheckAgentCsr(req.csr_pem()));
  const std::string hash = HashToken(req.token());
  absl::StatusOr<TokenRecord> token = deps.access_store->GetToken(hash);
  if (!token.ok()) {
    if (absl::IsNotFound(token.status())) {
      return absl::UnauthenticatedError(
          "the enrolment token is not known to this controller (mistyped, made up, or made by "
          "another controller): make one with `kctl token create`");
    }
    return token.status();
  }
  const std::string& host_id = csr.subject.common_name;
  if (!token->host_id.empty() && token->host_id != host_id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the CSR names host id ", host_id, " but the token is for host id ", token->host_id));
  }
  if (!token->name.empty() && !req.name().empty() && req.name() != token->name) {
    return absl::PermissionDeniedError(absl::StrCat("the agent asks for the name ", req.name(),
                                                    " but the token is for ", token->name));
  }
  for (const auto& [k, v] : req.labels()) {
    auto it = token->labels.find(k);
    if (it == token->labels.end() || it->second != v) {
      return absl::PermissionDeniedError(absl::StrCat(
          "label ", k, "=", v, " is not granted by the token (it grants ",
          token->labels.empty() ? "no labels" : FormatLabels(token->labels),
          "): make a token with kctl token create --labels ..., or start the agent without it"));
    }
  }
  ASSIGN_OR_RETURN(std::optional<EnrolledHost> known, deps.access_store->GetEnrolledHost(host_id));
  if (known.has_value() && token->host_id.empty()) {
    // A host keeps its id and certificate in its state dir: a second enrolment under an id
    // already taken is someone else claiming that host.
    return absl::PermissionDeniedError(absl::StrCat(
        "host id ", host_id, " is already enrolled (as ", known->name,
        "): an agent keeps its certificate in its state dir; to replace a host, kctl hosts revoke ",
        known->name, " and start the new one with an empty state dir"));
  }
  EnrolledHost host;
  host.host_id = host_id;
  host.name = !token->name.empty() ? token->name : !req.name().empty() ? req.name() : host_id;
  host.labels = token->labels;
  ASSIGN_OR_RETURN(std::optional<EnrolledHost> same_name,
                   deps.access_store->FindEnrolledHostByName(host.name));
  if (same_name.has_value() && same_name->host_id != host_id) {
    return absl::AlreadyExistsError(absl::StrCat(
        "the name ", host.name, " belongs to enrolled host ", same_name->host_id,
        ": start the agent with another --name, or kctl hosts revoke ", host.name, " first"));
  }
  RETURN_IF_ERROR(deps.access_store->RedeemToken(hash, NowMs()));
  RETURN_IF_ERROR(deps.access_store->PutEnrolledHost(host));
  ASSIGN_OR_RETURN(Issued cert, IssueAgent(deps, csr, host));
  LogInfo(absl::StrCat("enrolled host ", host.name, " (", host_id, "), certificate ",
                       cert.info.serial));
  return Response(cert, deps.ca->ca_pem(), host);
}

grpc::ServerUnaryReactor* EnrolServiceImpl::Enrol(grpc::CallbackServerContext* ctx,
                                                  const v1::EnrolRequest* req,
                                                  v1::EnrolResponse* resp) {
  return Run(deps_, ctx, Permission::kAnyone, "EnrolService/Enrol", req->name().substr(0, 64),
             /*audit=*/true, [this, req, resp](const Identity&) -> absl::Status {
               ASSIGN_OR_RETURN(*resp, controller::Enrol(deps_, *req));
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* EnrolServiceImpl::Renew(grpc::CallbackServerContext* ctx,
                                                  const v1::RenewRequest* req,
                                                  v1::EnrolResponse* resp) {
  return Run(deps_, ctx, Permission::kAgent, "EnrolService/Renew", "", /*audit=*/true,
             [this, req, resp](const Identity& who) -> absl::Status {
               if (deps_.ca == nullptr) return absl::FailedPreconditionError("plaintext");
               ASSIGN_OR_RETURN(pki::CsrInfo csr, CheckAgentCsr(req->csr_pem()));
               if (csr.subject.common_name != who.name) {
                 return absl::PermissionDeniedError(
                     absl::StrCat("host ", who.name, " may renew only its own certificate, not ",
                                  csr.subject.common_name));
               }
               ASSIGN_OR_RETURN(std::optional<EnrolledHost> host,
                                deps_.access_store->GetEnrolledHost(who.name));
               if (!host.has_value() || host->revoked) {
                 return absl::PermissionDeniedError(
                     absl::StrCat("host ", who.name, " is not enrolled (or was revoked)"));
               }
               ASSIGN_OR_RETURN(Issued cert, IssueAgent(deps_, csr, *host));
               *resp = Response(cert, deps_.ca->ca_pem(), *host);
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* AccessServiceImpl::CreateToken(grpc::CallbackServerContext* ctx,
                                                         const v1::CreateTokenRequest* req,
                                                         v1::CreateTokenResponse* resp) {
  return Run(deps_, ctx, Permission::kAdmin, "AccessService/CreateToken",
             absl::StrJoin(req->labels(), ",", absl::PairFormatter("=")), /*audit=*/true,
             [this, req, resp](const Identity& who) -> absl::Status {
               if (deps_.ca == nullptr || !deps_.ca->can_issue()) {
                 return absl::FailedPreconditionError(
                     "this controller cannot issue certificates (plaintext, or its PKI came "
                     "without --tls-ca-key)");
               }
               RETURN_IF_ERROR(CheckLabels(req->labels()));
               if ((!req->name().empty() && !IsValidId(req->name())) ||
                   (!req->host_id().empty() && !IsValidId(req->host_id()))) {
                 return absl::InvalidArgumentError(
                     "name and host_id must be 1-64 characters of [A-Za-z0-9._-]");
               }
               ASSIGN_OR_RETURN(absl::Duration ttl,
                                TtlOf(req->ttl(), absl::Hours(1), kMaxTokenTtl, "--ttl"));
               uint32_t uses = req->uses() == 0 ? 1 : req->uses();
               if (uses > 10000) return absl::InvalidArgumentError("--uses is at most 10000");
               Labels labels(req->labels().begin(), req->labels().end());
               ASSIGN_OR_RETURN(NewToken t, MakeToken(deps_.access_store, labels, req->name(),
                                                      req->host_id(), uses, ttl, who.Describe()));
               resp->set_token(t.token);
               resp->set_ca_fingerprint(deps_.ca->fingerprint());
               resp->set_expires_unix_ms(t.expires_ms);
               resp->set_uses(uses);
               *resp->mutable_labels() = req->labels();
               resp->set_ca_pem(deps_.ca->ca_pem());
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* AccessServiceImpl::CreateUser(grpc::CallbackServerContext* ctx,
                                                        const v1::CreateUserRequest* req,
                                                        v1::CreateUserResponse* resp) {
  return Run(
      deps_, ctx, Permission::kAdmin, "AccessService/CreateUser",
      absl::StrCat(req->name().substr(0, 64), " role=", req->role().substr(0, 16)),
      /*audit=*/true, [this, req, resp](const Identity&) -> absl::Status {
        if (deps_.ca == nullptr) return absl::FailedPreconditionError("plaintext controller");
        if (!IsValidId(req->name())) {
          return absl::InvalidArgumentError(absl::StrCat("user name \"", req->name().substr(0, 64),
                                                         "\" is not 1-64 of [A-Za-z0-9._-]"));
        }
        if (!IsUserRole(req->role())) {
          return absl::InvalidArgumentError(absl::StrCat("role \"", req->role().substr(0, 32),
                                                         "\" is not admin, operator or viewer"));
        }
        if (req->csr_pem().size() > kMaxCsrBytes) {
          return absl::InvalidArgumentError("the CSR is too large");
        }
        ASSIGN_OR_RETURN(pki::CsrInfo csr, pki::ParseCsr(req->csr_pem()));
        if (csr.subject.common_name != req->name() ||
            (!csr.subject.organizational_unit.empty() &&
             csr.subject.organizational_unit != req->role()) ||
            !csr.other_subject_fields.empty() || csr.has_extensions) {
          return absl::InvalidArgumentError(
              "the CSR's subject must be CN=NAME (OU=ROLE) and nothing else");
        }
        ASSIGN_OR_RETURN(absl::Duration ttl,
                         TtlOf(req->ttl(), kDefaultUserTtl, kMaxUserTtl, "--ttl"));
        ASSIGN_OR_RETURN(Issued cert,
                         deps_.ca->IssueClient(csr.public_key_pem, req->name(), req->role(), ttl));
        RETURN_IF_ERROR(deps_.access_store->RecordCertificate(
            CertRecord{cert.info.serial, "user", req->name(), "", req->role(), NowMs(),
                       absl::ToUnixMillis(cert.info.not_after)}));
        resp->set_certificate_pem(cert.pem);
        resp->set_ca_pem(deps_.ca->ca_pem());
        resp->set_serial(cert.info.serial);
        resp->set_not_after_unix_ms(absl::ToUnixMillis(cert.info.not_after));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AccessServiceImpl::RevokeUser(grpc::CallbackServerContext* ctx,
                                                        const v1::RevokeRequest* req,
                                                        v1::RevokeResponse* resp) {
  return Run(deps_, ctx, Permission::kAdmin, "AccessService/RevokeUser", req->name().substr(0, 64),
             /*audit=*/true, [this, req, resp](const Identity&) -> absl::Status {
               ASSIGN_OR_RETURN(std::vector<CertRecord> revoked,
                                deps_.access_store->Revoke("user", req->name(), NowMs()));
               if (revoked.empty()) {
                 return absl::NotFoundError(absl::StrCat("no user ", req->name().substr(0, 64),
                                                         " with a certificate to revoke"));
               }
               std::vector<std::string> serials;
               for (const CertRecord& c : revoked) serials.push_back(c.serial);
               deps_.access->MarkRevoked(serials);
               for (std::string& s : serials) resp->add_serials(std::move(s));
               // Open streams of the user re-check their caller on a change: end them now.
               if (deps_.feed != nullptr) deps_.feed->Publish();
               return absl::OkStatus();
             });
}

absl::StatusOr<v1::RevokeResponse> RevokeHost(const AccessDeps& deps, const std::string& name) {
  // By name or id: the enrolled record first, else a host the fleet knows.
  std::string host_id = name;
  if (absl::StatusOr<std::optional<EnrolledHost>> e =
          deps.access_store->FindEnrolledHostByName(name);
      e.ok() && e->has_value()) {
    host_id = (*e)->host_id;
  } else if (absl::StatusOr<v1::Host> h = deps.store->GetHost(name); h.ok()) {
    host_id = h->id();
  }
  ASSIGN_OR_RETURN(std::vector<CertRecord> revoked,
                   deps.access_store->Revoke("agent", host_id, NowMs()));
  RETURN_IF_ERROR(deps.access_store->DeleteTokensForHost(host_id));
  if (revoked.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no host ", name.substr(0, 64), " with a certificate to revoke"));
  }
  v1::RevokeResponse resp;
  std::vector<std::string> serials;
  for (const CertRecord& c : revoked) serials.push_back(c.serial);
  deps.access->MarkRevoked(serials);
  for (std::string& s : serials) resp.add_serials(std::move(s));
  if (deps.fleet != nullptr &&
      deps.fleet->Disconnect(host_id, grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                                   "this host's certificate was revoked"))) {
    resp.set_sessions_ended(1);
  }
  LogInfo(
      absl::StrCat("revoked host ", name, " (", host_id, "): ", revoked.size(), " certificate(s)"));
  return resp;
}

grpc::ServerUnaryReactor* AccessServiceImpl::RevokeHost(grpc::CallbackServerContext* ctx,
                                                        const v1::RevokeRequest* req,
                                                        v1::RevokeResponse* resp) {
  return Run(deps_, ctx, Permission::kAdmin, "AccessService/RevokeHost", req->name().substr(0, 64),
             /*audit=*/true, [this, req, resp](const Identity&) -> absl::Status {
               ASSIGN_OR_RETURN(*resp, controller::RevokeHost(deps_, req->name()));
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* AccessServiceImpl::ListAudit(grpc::CallbackServerContext* ctx,
                                                       const v1::ListAuditRequest* req,
                                                       v1::ListAuditResponse* resp) {
  return Run(deps_, ctx, Permission::kAdmin, "AccessService/ListAudit", "", /*audit=*/false,
             [this, req, resp](const Identity&) -> absl::Status {
               int limit = req->limit() == 0
                               ? 200
                               : static_cast<int>(std::min<uint32_t>(req->limit(), 10000));
               ASSIGN_OR_RETURN(std::vector<v1::AuditEntry> entries,
                                deps_.access_store->ListAudit(req->since_unix_ms(), limit));
               for (v1::AuditEntry& e : entries) *resp->add_entries() = std::move(e);
               return absl::OkStatus();
             });
}

grpc::ServerUnaryReactor* AccessServiceImpl::WhoAmI(grpc::CallbackServerContext* ctx,
                                                    const v1::WhoAmIRequest*, v1::Identity* resp) {
  return Run(deps_, ctx, Permission::kAgentOrRead, "AccessService/WhoAmI", "", /*audit=*/false,
             [resp](const Identity& who) -> absl::Status {
               resp->set_kind(who.kind);
               resp->set_name(who.name);
               resp->set_role(who.role);
               resp->set_serial(who.serial);
               if (who.not_after != absl::InfiniteFuture()) {
                 resp->set_not_after_unix_ms(absl::ToUnixMillis(who.not_after));
               }
               return absl::OkStatus();
             });
}

}  // namespace kfleet::controller

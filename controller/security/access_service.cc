#include "controller/security/access_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "controller/security/enrol_service.h"

namespace kfleet::controller {
namespace {

constexpr absl::Duration kMaxTokenTtl = absl::Hours(24 * 30);
constexpr absl::Duration kDefaultUserTtl = absl::Hours(24 * 365);
constexpr absl::Duration kMaxUserTtl = absl::Hours(24 * 365 * 5);

}  // namespace

grpc::ServerUnaryReactor* AccessServiceImpl::CreateToken(grpc::CallbackServerContext* ctx,
                                                         const v1::CreateTokenRequest* req,
                                                         v1::CreateTokenResponse* resp) {
  return RunAuthorized(
      deps_, ctx, Permission::kAdmin, "AccessService/CreateToken",
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
  return RunAuthorized(
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
  return RunAuthorized(
      deps_, ctx, Permission::kAdmin, "AccessService/RevokeUser", req->name().substr(0, 64),
      /*audit=*/true, [this, req, resp](const Identity&) -> absl::Status {
        ASSIGN_OR_RETURN(std::vector<CertRecord> revoked,
                         deps_.access_store->Revoke("user", req->name(), NowMs()));
        if (revoked.empty()) {
          return absl::NotFoundError(
              absl::StrCat("no user ", req->name().substr(0, 64), " with a certificate to revoke"));
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
  return RunAuthorized(deps_, ctx, Permission::kAdmin, "AccessService/RevokeHost",
                       req->name().substr(0, 64),
                       /*audit=*/true, [this, req, resp](const Identity&) -> absl::Status {
                         ASSIGN_OR_RETURN(*resp, controller::RevokeHost(deps_, req->name()));
                         return absl::OkStatus();
                       });
}

grpc::ServerUnaryReactor* AccessServiceImpl::ListAudit(grpc::CallbackServerContext* ctx,
                                                       const v1::ListAuditRequest* req,
                                                       v1::ListAuditResponse* resp) {
  return RunAuthorized(
      deps_, ctx, Permission::kAdmin, "AccessService/ListAudit", "", /*audit=*/false,
      [this, req, resp](const Identity&) -> absl::Status {
        int limit =
            req->limit() == 0 ? 200 : static_cast<int>(std::min<uint32_t>(req->limit(), 10000));
        ASSIGN_OR_RETURN(std::vector<v1::AuditEntry> entries,
                         deps_.access_store->ListAudit(req->since_unix_ms(), limit));
        for (v1::AuditEntry& e : entries) *resp->add_entries() = std::move(e);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AccessServiceImpl::WhoAmI(grpc::CallbackServerContext* ctx,
                                                    const v1::WhoAmIRequest*, v1::Identity* resp) {
  return RunAuthorized(deps_, ctx, Permission::kAgentOrRead, "AccessService/WhoAmI", "",
                       /*audit=*/false, [resp](const Identity& who) -> absl::Status {
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

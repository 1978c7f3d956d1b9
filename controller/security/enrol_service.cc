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
constexpr char kTokenPrefix[] = "kft1-";

// SHA-256 is always there in OpenSSL: a failure is impossible and crashes loudly rather than
// giving every token the same (empty) hash.
std::string HashToken(absl::string_view token) {
  Sha256 h = Sha256::Create().value();
  h.Update(token);
  return h.FinishHex().value();
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
  return RunAuthorized(deps_, ctx, Permission::kAnyone, "EnrolService/Enrol",
                       req->name().substr(0, 64),
                       /*audit=*/true, [this, req, resp](const Identity&) -> absl::Status {
                         ASSIGN_OR_RETURN(*resp, controller::Enrol(deps_, *req));
                         return absl::OkStatus();
                       });
}

grpc::ServerUnaryReactor* EnrolServiceImpl::Renew(grpc::CallbackServerContext* ctx,
                                                  const v1::RenewRequest* req,
                                                  v1::EnrolResponse* resp) {
  return RunAuthorized(deps_, ctx, Permission::kAgent, "EnrolService/Renew", "", /*audit=*/true,
                       [this, req, resp](const Identity& who) -> absl::Status {
                         if (deps_.ca == nullptr) return absl::FailedPreconditionError("plaintext");
                         ASSIGN_OR_RETURN(pki::CsrInfo csr, CheckAgentCsr(req->csr_pem()));
                         if (csr.subject.common_name != who.name) {
                           return absl::PermissionDeniedError(absl::StrCat(
                               "host ", who.name, " may renew only its own certificate, not ",
                               csr.subject.common_name));
                         }
                         ASSIGN_OR_RETURN(std::optional<EnrolledHost> host,
                                          deps_.access_store->GetEnrolledHost(who.name));
                         if (!host.has_value() || host->revoked) {
                           return absl::PermissionDeniedError(absl::StrCat(
                               "host ", who.name, " is not enrolled (or was revoked)"));
                         }
                         ASSIGN_OR_RETURN(Issued cert, IssueAgent(deps_, csr, *host));
                         *resp = Response(cert, deps_.ca->ca_pem(), *host);
                         return absl::OkStatus();
                       });
}

}  // namespace kfleet::controller

#include "cli/fake_access_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/pki.h"

namespace kfleet::cli {

absl::Status FakeAccessService::MakeCa() {
  absl::StatusOr<std::string> key = pki::GenerateKeyPem();
  if (!key.ok()) return key.status();
  absl::Time now = absl::Now();
  absl::StatusOr<std::string> cert = pki::MakeCaCertificate(
      *key, pki::Subject{"kfleet test CA", "ca"}, now - absl::Hours(1), now + absl::Hours(48));
  if (!cert.ok()) return cert.status();
  ca_key_pem = *key;
  ca_cert_pem = *cert;
  return absl::OkStatus();
}

std::vector<std::string> FakeAccessService::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

v1::CreateTokenRequest FakeAccessService::last_token() const {
  absl::MutexLock lock(&mu_);
  return last_token_;
}

v1::CreateUserRequest FakeAccessService::last_user() const {
  absl::MutexLock lock(&mu_);
  return last_user_;
}

v1::ListAuditRequest FakeAccessService::last_audit() const {
  absl::MutexLock lock(&mu_);
  return last_audit_;
}

void FakeAccessService::Record(const std::string& call) {
  absl::MutexLock lock(&mu_);
  calls_.push_back(call);
}

grpc::Status FakeAccessService::CreateToken(grpc::ServerContext*,
                                            const v1::CreateTokenRequest* request,
                                            v1::CreateTokenResponse* response) {
  Record("CreateToken");
  {
    absl::MutexLock lock(&mu_);
    last_token_ = *request;
  }
  if (!error.ok()) return error;
  *response = token;
  return grpc::Status::OK;
}

grpc::Status FakeAccessService::CreateUser(grpc::ServerContext*,
                                           const v1::CreateUserRequest* request,
                                           v1::CreateUserResponse* response) {
  Record(absl::StrCat("CreateUser ", request->name()));
  {
    absl::MutexLock lock(&mu_);
    last_user_ = *request;
  }
  if (!error.ok()) return error;
  if (ca_cert_pem.empty()) {
    *response = user;
    return grpc::Status::OK;
  }
  // As the controller does: the CSR's subject must be the user, and the role comes from the
  // request.
  absl::StatusOr<pki::CsrInfo> csr = pki::ParseCsr(request->csr_pem());
  if (!csr.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(csr.status().message()));
  }
  if (csr->subject.common_name != request->name()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("the CSR is for \"", csr->subject.common_name,
                                     "\", not for user \"", request->name(), "\""));
  }
  absl::Time now = absl::Now();
  pki::IssueOptions options;
  options.subject = pki::Subject{request->name(), request->role()};
  options.not_before = now - absl::Minutes(5);
  options.not_after = now + absl::Hours(24 * 365);
  absl::StatusOr<std::string> cert =
      pki::IssueCertificate(ca_cert_pem, ca_key_pem, csr->public_key_pem, options);
  if (!cert.ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(cert.status().message()));
  }
  absl::StatusOr<pki::CertInfo> info = pki::ParseCertificate(*cert);
  if (!info.ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(info.status().message()));
  }
  response->set_certificate_pem(*cert);
  response->set_ca_pem(ca_cert_pem);
  response->set_serial(info->serial);
  response->set_not_after_unix_ms(absl::ToUnixMillis(info->not_after));
  return grpc::Status::OK;
}

grpc::Status FakeAccessService::RevokeUser(grpc::ServerContext*, const v1::RevokeRequest* request,
                                           v1::RevokeResponse* response) {
  Record(absl::StrCat("RevokeUser ", request->name()));
  if (!error.ok()) return error;
  auto it = users.find(request->name());
  if (it == users.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no user \"", request->name(), "\""));
  }
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeAccessService::RevokeHost(grpc::ServerContext*, const v1::RevokeRequest* request,
                                           v1::RevokeResponse* response) {
  Record(absl::StrCat("RevokeHost ", request->name()));
  if (!error.ok()) return error;
  auto it = hosts.find(request->name());
  if (it == hosts.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no host \"", request->name(), "\""));
  }
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeAccessService::ListAudit(grpc::ServerContext*, const v1::ListAuditRequest* request,
                                          v1::ListAuditResponse* response) {
  Record("ListAudit");
  {
    absl::MutexLock lock(&mu_);
    last_audit_ = *request;
  }
  if (!error.ok()) return error;
  *response = audit;
  return grpc::Status::OK;
}

grpc::Status FakeAccessService::WhoAmI(grpc::ServerContext*, const v1::WhoAmIRequest*,
                                       v1::Identity* response) {
  Record("WhoAmI");
  if (!error.ok()) return error;
  *response = identity;
  return grpc::Status::OK;
}

}  // namespace kfleet::cli

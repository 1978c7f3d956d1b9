// An AccessService for tests: answers from canned data, issues real certificates from a CA of its
// own when it has one, and records what it was asked. Serve it beside a FakeFleetService
// (FakeFleetServer's `also`).
#ifndef KFLEET_CLI_FAKE_ACCESS_SERVICE_H_
#define KFLEET_CLI_FAKE_ACCESS_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "kfleet/v1/security.grpc.pb.h"

namespace kfleet::cli {

class FakeAccessService : public v1::AccessService::Service {
 public:
  // Canned answers. Set before the first call; not changed while calls run.
  v1::CreateTokenResponse token;  // CreateToken answers this
  // RevokeUser and RevokeHost answer the entry of the name asked for, NOT_FOUND for another.
  std::map<std::string, v1::RevokeResponse> users;
  std::map<std::string, v1::RevokeResponse> hosts;
  v1::ListAuditResponse audit;  // ListAudit answers this, as it is
  v1::Identity identity;        // WhoAmI answers this
  // CreateUser issues a certificate for the CSR from this CA (pki) when set, else answers `user`.
  std::string ca_cert_pem;
  std::string ca_key_pem;
  v1::CreateUserResponse user;
  grpc::Status error = grpc::Status::OK;  // when not OK, every call fails with it

  // Makes ca_cert_pem and ca_key_pem.
  absl::Status MakeCa();

  // What was asked.
  std::vector<std::string> calls() const;
  v1::CreateTokenRequest last_token() const;
  v1::CreateUserRequest last_user() const;
  v1::ListAuditRequest last_audit() const;

  grpc::Status CreateToken(grpc::ServerContext*, const v1::CreateTokenRequest* request,
                           v1::CreateTokenResponse* response) override;
  grpc::Status CreateUser(grpc::ServerContext*, const v1::CreateUserRequest* request,
                          v1::CreateUserResponse* response) override;
  grpc::Status RevokeUser(grpc::ServerContext*, const v1::RevokeRequest* request,
                          v1::RevokeResponse* response) override;
  grpc::Status RevokeHost(grpc::ServerContext*, const v1::RevokeRequest* request,
                          v1::RevokeResponse* response) override;
  grpc::Status ListAudit(grpc::ServerContext*, const v1::ListAuditRequest* request,
                         v1::ListAuditResponse* response) override;
  grpc::Status WhoAmI(grpc::ServerContext*, const v1::WhoAmIRequest*,
                      v1::Identity* response) override;

 private:
  void Record(const std::string& call);

  mutable absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  v1::CreateTokenRequest last_token_ ABSL_GUARDED_BY(mu_);
  v1::CreateUserRequest last_user_ ABSL_GUARDED_BY(mu_);
  v1::ListAuditRequest last_audit_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_FAKE_ACCESS_SERVICE_H_

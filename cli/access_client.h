// kctl's side of AccessService (tokens, users, revocation, audit, whoami): every call with a
// deadline, errors as RpcError reports them.
#ifndef KFLEET_CLI_ACCESS_CLIENT_H_
#define KFLEET_CLI_ACCESS_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kfleet/v1/security.grpc.pb.h"

namespace kfleet::cli {

// Not thread-safe: kctl makes one call at a time.
class AccessClient {
 public:
  // `address` is only used in error messages.
  AccessClient(std::shared_ptr<grpc::Channel> channel, std::string address,
               absl::Duration rpc_timeout);

  absl::StatusOr<v1::CreateTokenResponse> CreateToken(const v1::CreateTokenRequest& request);
  absl::StatusOr<v1::CreateUserResponse> CreateUser(const v1::CreateUserRequest& request);
  // `name`: a user name; for RevokeHost, a host's name or id.
  absl::StatusOr<v1::RevokeResponse> RevokeUser(const std::string& name);
  absl::StatusOr<v1::RevokeResponse> RevokeHost(const std::string& name);
  absl::StatusOr<v1::ListAuditResponse> ListAudit(const v1::ListAuditRequest& request);
  absl::StatusOr<v1::Identity> WhoAmI();

 private:
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(absl::string_view method,
                                grpc::Status (v1::AccessService::Stub::*rpc)(grpc::ClientContext*,
                                                                             const Request&,
                                                                             Response*),
                                const Request& request);

  std::unique_ptr<v1::AccessService::Stub> stub_;
  std::string address_;
  absl::Duration rpc_timeout_;
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_ACCESS_CLIENT_H_

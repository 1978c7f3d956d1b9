#include "cli/access_client.h"

#include "cli/fleet_client.h"

namespace kfleet::cli {

AccessClient::AccessClient(std::shared_ptr<grpc::Channel> channel, std::string address,
                           absl::Duration rpc_timeout)
    : stub_(v1::AccessService::NewStub(channel)),
      address_(std::move(address)),
      rpc_timeout_(rpc_timeout) {}

template <typename Request, typename Response>
absl::StatusOr<Response> AccessClient::Call(
    absl::string_view method,
    grpc::Status (v1::AccessService::Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
    const Request& request) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_));
  Response response;
  grpc::Status s = (stub_.get()->*rpc)(&context, request, &response);
  if (!s.ok()) return RpcError(method, s, address_);
  return response;
}

absl::StatusOr<v1::CreateTokenResponse> AccessClient::CreateToken(
    const v1::CreateTokenRequest& request) {
  return Call("CreateToken", &v1::AccessService::Stub::CreateToken, request);
}

absl::StatusOr<v1::CreateUserResponse> AccessClient::CreateUser(
    const v1::CreateUserRequest& request) {
  return Call("CreateUser", &v1::AccessService::Stub::CreateUser, request);
}

absl::StatusOr<v1::RevokeResponse> AccessClient::RevokeUser(const std::string& name) {
  v1::RevokeRequest request;
  request.set_name(name);
  return Call("RevokeUser", &v1::AccessService::Stub::RevokeUser, request);
}

absl::StatusOr<v1::RevokeResponse> AccessClient::RevokeHost(const std::string& name) {
  v1::RevokeRequest request;
  request.set_name(name);
  return Call("RevokeHost", &v1::AccessService::Stub::RevokeHost, request);
}

absl::StatusOr<v1::ListAuditResponse> AccessClient::ListAudit(const v1::ListAuditRequest& request) {
  return Call("ListAudit", &v1::AccessService::Stub::ListAudit, request);
}

absl::StatusOr<v1::Identity> AccessClient::WhoAmI() {
  return Call("WhoAmI", &v1::AccessService::Stub::WhoAmI, v1::WhoAmIRequest());
}

}  // namespace kfleet::cli

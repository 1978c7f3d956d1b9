// AccessService (kctl): tokens, users, revocation, audit, whoami. Unary callback handlers whose
// store work runs on the executor; all but WhoAmI need role admin.
#ifndef KFLEET_CONTROLLER_SECURITY_ACCESS_SERVICE_H_
#define KFLEET_CONTROLLER_SECURITY_ACCESS_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "controller/security/access_rpc.h"
#include "kfleet/v1/security.grpc.pb.h"

namespace kfleet::controller {

class AccessServiceImpl : public v1::AccessService::CallbackService {
 public:
  explicit AccessServiceImpl(AccessDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* CreateToken(grpc::CallbackServerContext* ctx,
                                        const v1::CreateTokenRequest* req,
                                        v1::CreateTokenResponse* resp) override;
  grpc::ServerUnaryReactor* CreateUser(grpc::CallbackServerContext* ctx,
                                       const v1::CreateUserRequest* req,
                                       v1::CreateUserResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeUser(grpc::CallbackServerContext* ctx,
                                       const v1::RevokeRequest* req,
                                       v1::RevokeResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeHost(grpc::CallbackServerContext* ctx,
                                       const v1::RevokeRequest* req,
                                       v1::RevokeResponse* resp) override;
  grpc::ServerUnaryReactor* ListAudit(grpc::CallbackServerContext* ctx,
                                      const v1::ListAuditRequest* req,
                                      v1::ListAuditResponse* resp) override;
  grpc::ServerUnaryReactor* WhoAmI(grpc::CallbackServerContext* ctx, const v1::WhoAmIRequest* req,
                                   v1::Identity* resp) override;

 private:
  AccessDeps deps_;
};

// Revokes a host's certificates (by host name or id), forgets its tokens and ends its session.
absl::StatusOr<v1::RevokeResponse> RevokeHost(const AccessDeps& deps, const std::string& name);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_SECURITY_ACCESS_SERVICE_H_

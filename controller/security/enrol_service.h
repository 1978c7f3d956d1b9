// EnrolService (agents) and AccessService (kctl: tokens, users, revocation, audit). Unary
// callback handlers whose store work runs on the executor. Enrol is the one RPC served without a
// client certificate; everything it takes is bounded and checked before a token use is spent.
#ifndef KFLEET_CONTROLLER_SECURITY_ENROL_SERVICE_H_
#define KFLEET_CONTROLLER_SECURITY_ENROL_SERVICE_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "common/executor.h"
#include "controller/fleet/change_feed.h"
#include "controller/fleet/fleet.h"
#include "controller/security/access_control.h"
#include "controller/security/access_store.h"
#include "controller/security/certificate_authority.h"
#include "controller/store/store.h"
#include "kfleet/v1/security.grpc.pb.h"

namespace kfleet::controller {

struct AccessDeps {
  AccessStore* access_store;
  AccessControl* access;
  const CertificateAuthority* ca;  // null on a plaintext controller
  Executor* executor;
  Store* store;
  Fleet* fleet;
  // Woken after a revocation, so that open watch streams re-check their caller at once.
  ChangeFeed* feed = nullptr;
};

// Makes a token (shown once; the store keeps its sha256) bound to `labels` and, if set, to one
// host `name` and `host_id`. uses < 0: any number (a guest's own token).
struct NewToken {
  std::string token;
  int64_t expires_ms;
};
absl::StatusOr<NewToken> MakeToken(AccessStore* store, const Labels& labels,
                                   const std::string& name, const std::string& host_id,
                                   int64_t uses, absl::Duration ttl, const std::string& created_by);

// Checks a CSR and what the token grants and, if all agree, spends a use and issues the
// certificate. Exposed for tests.
absl::StatusOr<v1::EnrolResponse> Enrol(const AccessDeps& deps, const v1::EnrolRequest& req);

class EnrolServiceImpl : public v1::EnrolService::CallbackService {
 public:
  explicit EnrolServiceImpl(AccessDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* Enrol(grpc::CallbackServerContext* ctx, const v1::EnrolRequest* req,
                                  v1::EnrolResponse* resp) override;
  grpc::ServerUnaryReactor* Renew(grpc::CallbackServerContext* ctx, const v1::RenewRequest* req,
                                  v1::EnrolResponse* resp) override;

 private:
  AccessDeps deps_;
};

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

#endif  // KFLEET_CONTROLLER_SECURITY_ENROL_SERVICE_H_

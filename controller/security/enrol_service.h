// EnrolService (agents): enrolment with a token and renewal. Unary callback handlers whose store
// work runs on the executor. Enrol is the one RPC served without a client certificate; everything
// it takes is bounded and checked before a token use is spent.
#ifndef KFLEET_CONTROLLER_SECURITY_ENROL_SERVICE_H_
#define KFLEET_CONTROLLER_SECURITY_ENROL_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "controller/security/access_rpc.h"
#include "kfleet/v1/security.grpc.pb.h"

namespace kfleet::controller {

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

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_SECURITY_ENROL_SERVICE_H_

// What the enrolment and access services share: running an authorized call on the executor
// (audited when it changes something), and the checks of labels and lifetimes. Internal to
// controller/security.
#ifndef KFLEET_CONTROLLER_SECURITY_ACCESS_RPC_H_
#define KFLEET_CONTROLLER_SECURITY_ACCESS_RPC_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/executor.h"
#include "common/grpc_status.h"
#include "controller/fleet/change_feed.h"
#include "controller/fleet/fleet.h"
#include "controller/security/access_control.h"
#include "controller/security/access_store.h"
#include "controller/security/certificate_authority.h"
#include "controller/store/store.h"
#include "google/protobuf/map.h"

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

// Largest CSR an agent or kctl may send.
inline constexpr size_t kMaxCsrBytes = 16 << 10;

inline int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// Runs `fn(identity)` on the executor once `permission` is granted; calls that change something
// are audited with their result.
template <typename Fn>
grpc::ServerUnaryReactor* RunAuthorized(const AccessDeps& deps, grpc::CallbackServerContext* ctx,
                                        Permission permission, const char* method,
                                        std::string target, bool audit, Fn fn) {
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

// Labels as a host may carry them: at most 64, keys and values of [A-Za-z0-9._-].
absl::Status CheckLabels(const google::protobuf::Map<std::string, std::string>& labels);

// `text` as a duration in (0, limit], `fallback` when empty; `what` names the flag in errors.
absl::StatusOr<absl::Duration> TtlOf(const std::string& text, absl::Duration fallback,
                                     absl::Duration limit, absl::string_view what);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_SECURITY_ACCESS_RPC_H_

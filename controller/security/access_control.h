// Who is calling and what they may do. The peer's TLS certificate is the only identity: CN is the
// host id (agents) or the user name, OU the role. Every RPC handler asks Authorize() first;
// refusals and every call that changes something are written to the audit log. The revoked
// serials are kept in memory, checked at each TLS handshake (CheckHandshake) and at each call.
// Thread-safe.
#ifndef KFLEET_CONTROLLER_SECURITY_ACCESS_CONTROL_H_
#define KFLEET_CONTROLLER_SECURITY_ACCESS_CONTROL_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/security/access_store.h"

namespace kfleet::controller {

// What a call needs. Roles: viewer < operator < admin; agents are apart.
enum class Permission {
  kAnyone,       // no certificate needed (enrolment)
  kAgent,        // an agent certificate
  kAgentOrRead,  // an agent, or a user of any role (artifacts)
  kRead,         // viewer, operator or admin
  kOperate,      // operator or admin: jobs, exec, reboot, cancel, schedules
  kAdmin,        // admin: pools, tokens, users, revocation, audit
};

inline constexpr char kRoleAdmin[] = "admin";
inline constexpr char kRoleOperator[] = "operator";
inline constexpr char kRoleViewer[] = "viewer";
inline constexpr char kRoleAgent[] = "agent";

struct Identity {
  std::string kind;  // "user", "agent", "insecure" (plaintext loopback), "none" (no certificate)
  std::string name;  // user name, or host id
  std::string role;  // admin, operator, viewer, agent; "admin" for insecure; "" for none
  std::string serial;
  absl::Time not_after = absl::InfiniteFuture();
  std::string peer;  // the caller's address

  bool is_agent() const { return kind == "agent"; }
  // The name for audit lines and job submitters: "user:alice", "agent:h-12ab", "insecure".
  std::string Describe() const;
};

// True if `role` is admin, operator or viewer.
bool IsUserRole(absl::string_view role);

class AccessControl {
 public:
  // `insecure`: the server is plaintext (loopback only); every caller is treated as admin.
  AccessControl(AccessStore* store, bool insecure);

  // Loads the revoked serials from the store.
  absl::Status Load();

  bool insecure() const { return insecure_; }

  // For the TLS handshake (TransportSecurity::check_client): refuses revoked certificates and
  // certificates kfleet did not issue for a role. An empty PEM (no certificate) passes.
  absl::Status CheckHandshake(absl::string_view peer_cert_pem) const;

  // The caller's identity from its certificate (kind "none" without one).
  absl::StatusOr<Identity> IdentityOf(const grpc::ServerContextBase& ctx) const;

  // The caller's identity if it may call `method` (e.g. "FleetService/SubmitJob") with
  // `permission`; else Unauthenticated or PermissionDenied naming why and the fix, logged and
  // audited with `target`.
  absl::StatusOr<Identity> Authorize(const grpc::ServerContextBase& ctx, Permission permission,
                                     absl::string_view method, absl::string_view target = "");

  // Appends an audit line for a call that changed something (or tried to).
  void Audit(const Identity& who, absl::string_view method, absl::string_view target,
             const absl::Status& result);

  void MarkRevoked(const std::vector<std::string>& serials);
  bool IsRevoked(const std::string& serial) const;

 private:
  AccessStore* store_;
  const bool insecure_;
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> revoked_ ABSL_GUARDED_BY(mu_);
  // Parsed certificates by their PEM: a caller's certificate is the same on every call of a
  // connection, and parsing it costs more than the rest of the check. Cleared when it grows past
  // a bound.
  mutable absl::flat_hash_map<std::string, Identity> parsed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_SECURITY_ACCESS_CONTROL_H_

// What the controller keeps about identities, in STATE_DIR/access.db (SQLite, WAL): enrolment
// tokens (only their sha256), the certificates it issued, the hosts that enrolled (their name and
// labels come from here, never from the agent), and the audit log. Thread-safe.
#ifndef KFLEET_CONTROLLER_SECURITY_ACCESS_STORE_H_
#define KFLEET_CONTROLLER_SECURITY_ACCESS_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controller/store/sqlite.h"
#include "kfleet/v1/security.pb.h"

namespace kfleet::controller {

using Labels = std::map<std::string, std::string>;

struct TokenRecord {
  std::string hash;  // sha256 hex of the token
  Labels labels;
  std::string name;       // bound host name, or empty
  std::string host_id;    // bound host id, or empty
  int64_t uses_left = 1;  // -1: any number (a guest's token, bound to its host id)
  int64_t expires_ms = 0;
  std::string created_by;
};

struct CertRecord {
  std::string serial;
  std::string kind;  // "agent" or "user"
  std::string name;  // host name or user name
  std::string host_id;
  std::string role;
  int64_t issued_ms = 0;
  int64_t not_after_ms = 0;
};

struct EnrolledHost {
  std::string host_id;
  std::string name;
  Labels labels;
  bool revoked = false;
};

class AccessStore {
 public:
  static absl::StatusOr<std::unique_ptr<AccessStore>> Open(const std::string& path);

  absl::Status CreateToken(const TokenRecord& token);
  // The token with this hash. NotFound if there is none.
  absl::StatusOr<TokenRecord> GetToken(const std::string& hash);
  // Takes one use of the token, which must still be valid at `now_ms`: Unauthenticated naming
  // why not (unknown, expired, used up).
  absl::Status RedeemToken(const std::string& hash, int64_t now_ms);
  absl::Status DeleteTokensForHost(const std::string& host_id);

  absl::Status RecordCertificate(const CertRecord& cert);
  // Revokes every unrevoked certificate of `kind` whose name or host id is `name`; returns their
  // serials (empty: none).
  absl::StatusOr<std::vector<CertRecord>> Revoke(const std::string& kind, const std::string& name,
                                                 int64_t now_ms);
  absl::StatusOr<std::vector<std::string>> RevokedSerials();

  absl::Status PutEnrolledHost(const EnrolledHost& host);
  // By host id. nullopt if it never enrolled.
  absl::StatusOr<std::optional<EnrolledHost>> GetEnrolledHost(const std::string& host_id);
  // By name: the enrolled host (not revoked) with this name.
  absl::StatusOr<std::optional<EnrolledHost>> FindEnrolledHostByName(const std::string& name);

  absl::Status AppendAudit(const v1::AuditEntry& entry);
  absl::StatusOr<std::vector<v1::AuditEntry>> ListAudit(int64_t since_ms, int limit);

 private:
  explicit AccessStore(SqliteDb db) : db_(std::move(db)) {}
  absl::StatusOr<std::optional<EnrolledHost>> QueryHost(const char* where, const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  SqliteDb db_ ABSL_GUARDED_BY(mu_);
};

// "k=v,k2=v2" (sorted) and back; the text form is what the store keeps.
std::string FormatLabels(const Labels& labels);
Labels ParseLabelText(const std::string& text);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_SECURITY_ACCESS_STORE_H_

#include "controller/security/access_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/status_macros.h"

namespace kfleet::controller {
namespace {

const std::vector<std::string>& Migrations() {
  static const auto* const kMigrations = new std::vector<std::string>{
      R"sql(
CREATE TABLE tokens(
  hash TEXT PRIMARY KEY,
  labels TEXT NOT NULL,
  name TEXT NOT NULL,
  host_id TEXT NOT NULL,
  uses_left INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL);
CREATE TABLE certificates(
  serial TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  host_id TEXT NOT NULL,
  role TEXT NOT NULL,
  issued_ms INTEGER NOT NULL,
  not_after_ms INTEGER NOT NULL,
  revoked_ms INTEGER);
CREATE INDEX certificates_by_name ON certificates(kind, name);
CREATE INDEX certificates_by_host ON certificates(host_id);
CREATE TABLE enrolled_hosts(
  host_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  labels TEXT NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE audit(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  who TEXT NOT NULL,
  role TEXT NOT NULL,
  method TEXT NOT NULL,
  target TEXT NOT NULL,
  result TEXT NOT NULL,
  peer TEXT NOT NULL);
CREATE INDEX audit_by_time ON audit(time_ms);
)sql"};
  return *kMigrations;
}

std::string FormatTime(int64_t ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

}  // namespace

std::string FormatLabels(const Labels& labels) {
  return absl::StrJoin(labels, ",", absl::PairFormatter("="));
}

Labels ParseLabelText(const std::string& text) {
  Labels labels;
  for (absl::string_view kv : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    labels[p.first] = p.second;
  }
  return labels;
}

absl::StatusOr<std::unique_ptr<AccessStore>> AccessStore::Open(const std::string& path) {
  ASSIGN_OR_RETURN(SqliteDb db, OpenSqlite(path));
  RETURN_IF_ERROR(Migrate(db.get(), Migrations()));
  return std::unique_ptr<AccessStore>(new AccessStore(std::move(db)));
}

absl::Status AccessStore::CreateToken(const TokenRecord& t) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s,
                   Stmt::Prepare(db_.get(),
                                 "INSERT INTO tokens(hash, labels, name, host_id, "
                                 "uses_left, expires_ms, created_by) VALUES(?,?,?,?,?,?,?)"));
  return s.Bind(1, t.hash)
      .Bind(2, FormatLabels(t.labels))
      .Bind(3, t.name)
      .Bind(4, t.host_id)
      .Bind(5, t.uses_left)
      .Bind(6, t.expires_ms)
      .Bind(7, t.created_by)
      .Run();
}

absl::StatusOr<TokenRecord> AccessStore::GetToken(const std::string& hash) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(),
                                         "SELECT labels, name, host_id, uses_left, expires_ms, "
                                         "created_by FROM tokens WHERE hash = ?"));
  s.Bind(1, hash);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return absl::NotFoundError("no such token");
  TokenRecord t;
  t.hash = hash;
  t.labels = ParseLabelText(s.Text(0));
  t.name = s.Text(1);
  t.host_id = s.Text(2);
  t.uses_left = s.Int(3);
  t.expires_ms = s.Int(4);
  t.created_by = s.Text(5);
  return t;
}

absl::Status AccessStore::RedeemToken(const std::string& hash, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(
      Stmt q, Stmt::Prepare(db_.get(), "SELECT uses_left, expires_ms FROM tokens WHERE hash = ?"));
  q.Bind(1, hash);
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) {
    return absl::UnauthenticatedError(
        "the enrolment token is not known to this controller (mistyped, made up, or made by "
        "another controller): make one with `kctl token create`");
  }
  int64_t uses_left = q.Int(0);
  int64_t expires_ms = q.Int(1);
  if (expires_ms <= now_ms) {
    return absl::UnauthenticatedError(absl::StrCat("the enrolment token expired at ",
                                                   FormatTime(expires_ms),
                                                   ": make a new one with `kctl token create`"));
  }
  if (uses_left == 0) {
    return absl::UnauthenticatedError(
        "the enrolment token was already used as many times as it allows: make a new one with "
        "`kctl token create` (--uses N for several hosts)");
  }
  if (uses_left < 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(Stmt u, Stmt::Prepare(db_.get(),
                                         "UPDATE tokens SET uses_left = uses_left - 1 WHERE hash = "
                                         "? AND uses_left > 0"));
  return u.Bind(1, hash).Run();
}

absl::Status AccessStore::DeleteTokensForHost(const std::string& host_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(), "DELETE FROM tokens WHERE host_id = ?"));
  return s.Bind(1, host_id).Run();
}

absl::Status AccessStore::RecordCertificate(const CertRecord& c) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(),
                                         "INSERT INTO certificates(serial, kind, name, host_id, "
                                         "role, issued_ms, not_after_ms) VALUES(?,?,?,?,?,?,?)"));
  return s.Bind(1, c.serial)
      .Bind(2, c.kind)
      .Bind(3, c.name)
      .Bind(4, c.host_id)
      .Bind(5, c.role)
      .Bind(6, c.issued_ms)
      .Bind(7, c.not_after_ms)
      .Run();
}

absl::StatusOr<std::vector<CertRecord>> AccessStore::Revoke(const std::string& kind,
                                                            const std::string& name,
                                                            int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt q, Stmt::Prepare(db_.get(),
                                         "SELECT serial, name, host_id, role, issued_ms, "
                                         "not_after_ms FROM certificates WHERE kind = ? AND "
                                         "(name = ? OR (host_id != '' AND host_id = ?)) AND "
                                         "revoked_ms IS NULL"));
  q.Bind(1, kind).Bind(2, name).Bind(3, name);
  std::vector<CertRecord> revoked;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    revoked.push_back(
        CertRecord{q.Text(0), kind, q.Text(1), q.Text(2), q.Text(3), q.Int(4), q.Int(5)});
  }
  RETURN_IF_ERROR(Exec(db_.get(), "BEGIN IMMEDIATE"));
  for (const CertRecord& c : revoked) {
    ASSIGN_OR_RETURN(
        Stmt u,
        Stmt::Prepare(db_.get(), "UPDATE certificates SET revoked_ms = ? WHERE serial = ?"));
    if (absl::Status s = u.Bind(1, now_ms).Bind(2, c.serial).Run(); !s.ok()) {
      Exec(db_.get(), "ROLLBACK").IgnoreError();
      return s;
    }
    if (!c.host_id.empty()) {
      ASSIGN_OR_RETURN(
          Stmt h,
          Stmt::Prepare(db_.get(), "UPDATE enrolled_hosts SET revoked = 1 WHERE host_id = ?"));
      if (absl::Status s = h.Bind(1, c.host_id).Run(); !s.ok()) {
        Exec(db_.get(), "ROLLBACK").IgnoreError();
        return s;
      }
    }
  }
  RETURN_IF_ERROR(Exec(db_.get(), "COMMIT"));
  return revoked;
}

absl::StatusOr<std::vector<std::string>> AccessStore::RevokedSerials() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(
      Stmt q,
      Stmt::Prepare(db_.get(), "SELECT serial FROM certificates WHERE revoked_ms IS NOT NULL"));
  std::vector<std::string> serials;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    serials.push_back(q.Text(0));
  }
  return serials;
}

absl::Status AccessStore::PutEnrolledHost(const EnrolledHost& h) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(),
                                         "INSERT OR REPLACE INTO enrolled_hosts(host_id, name, "
                                         "labels, revoked) VALUES(?,?,?,?)"));
  return s.Bind(1, h.host_id)
      .Bind(2, h.name)
      .Bind(3, FormatLabels(h.labels))
      .Bind(4, int64_t{h.revoked})
      .Run();
}

absl::StatusOr<std::optional<EnrolledHost>> AccessStore::QueryHost(const char* where,
                                                                   const std::string& key) {
  ASSIGN_OR_RETURN(Stmt q, Stmt::Prepare(db_.get(), absl::StrCat("SELECT host_id, name, labels, "
                                                                 "revoked FROM enrolled_hosts "
                                                                 "WHERE ",
                                                                 where)));
  q.Bind(1, key);
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<EnrolledHost>();
  return std::optional<EnrolledHost>(
      EnrolledHost{q.Text(0), q.Text(1), ParseLabelText(q.Text(2)), q.Int(3) != 0});
}

absl::StatusOr<std::optional<EnrolledHost>> AccessStore::GetEnrolledHost(
    const std::string& host_id) {
  absl::MutexLock lock(&mu_);
  return QueryHost("host_id = ?", host_id);
}

absl::StatusOr<std::optional<EnrolledHost>> AccessStore::FindEnrolledHostByName(
    const std::string& name) {
  absl::MutexLock lock(&mu_);
  return QueryHost("name = ? AND revoked = 0", name);
}

absl::Status AccessStore::AppendAudit(const v1::AuditEntry& e) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s, Stmt::Prepare(db_.get(),
                                         "INSERT INTO audit(time_ms, who, role, method, target, "
                                         "result, peer) VALUES(?,?,?,?,?,?,?)"));
  return s.Bind(1, e.time_unix_ms())
      .Bind(2, e.who())
      .Bind(3, e.role())
      .Bind(4, e.method())
      .Bind(5, e.target())
      .Bind(6, e.result())
      .Bind(7, e.peer())
      .Run();
}

absl::StatusOr<std::vector<v1::AuditEntry>> AccessStore::ListAudit(int64_t since_ms, int limit) {
  absl::MutexLock lock(&mu_);
  // The newest `limit` entries since `since_ms`, oldest first.
  ASSIGN_OR_RETURN(Stmt q, Stmt::Prepare(db_.get(),
                                         "SELECT time_ms, who, role, method, target, result, peer "
                                         "FROM (SELECT * FROM audit WHERE time_ms >= ? ORDER BY "
                                         "id DESC LIMIT ?) ORDER BY id"));
  q.Bind(1, since_ms).Bind(2, int64_t{limit});
  std::vector<v1::AuditEntry> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    v1::AuditEntry e;
    e.set_time_unix_ms(q.Int(0));
    e.set_who(q.Text(1));
    e.set_role(q.Text(2));
    e.set_method(q.Text(3));
    e.set_target(q.Text(4));
    e.set_result(q.Text(5));
    e.set_peer(q.Text(6));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace kfleet::controller

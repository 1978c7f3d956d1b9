#include "controller/store/sqlite.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace kfleet::controller {

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  int code = sqlite3_errcode(db);
  std::string msg = absl::StrCat(what, ": ", sqlite3_errmsg(db));
  switch (code & 0xff) {
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<SqliteDb> OpenSqlite(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat("cannot open the state database ", path, ": ",
                                               raw ? sqlite3_errmsg(raw) : "out of memory",
                                               " (check --state-dir and its permissions)"));
  }
  sqlite3_busy_timeout(db.get(), 5000);
  RETURN_IF_ERROR(Exec(db.get(), "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  return db;
}

absl::Status Exec(sqlite3* db, absl::string_view sql) {
  char* err = nullptr;
  std::string text(sql);
  if (sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite: ", msg, " in: ", text.substr(0, 120)));
  }
  return absl::OkStatus();
}

absl::Status Migrate(sqlite3* db, const std::vector<std::string>& migrations) {
  RETURN_IF_ERROR(Exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  ASSIGN_OR_RETURN(Stmt get, Stmt::Prepare(db, "SELECT MAX(version) FROM schema_version"));
  ASSIGN_OR_RETURN(bool row, get.Step());
  int64_t version = row && !get.IsNull(0) ? get.Int(0) : 0;
  if (version > static_cast<int64_t>(migrations.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("the state database has schema version ", version,
                     " but this kfleet-controller knows only ", migrations.size(),
                     ": run a newer kfleet-controller, or point --state-dir elsewhere"));
  }
  for (size_t v = version; v < migrations.size(); ++v) {
    RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
    absl::Status s = Exec(db, migrations[v]);
    if (s.ok()) {
      s = Exec(db, absl::StrCat("INSERT INTO schema_version(version) VALUES (", v + 1, ")"));
    }
    if (!s.ok()) {
      Exec(db, "ROLLBACK").IgnoreError();
      return absl::InternalError(
          absl::StrCat("schema migration ", v + 1, " failed: ", s.message()));
    }
    RETURN_IF_ERROR(Exec(db, "COMMIT"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Stmt> Stmt::Prepare(sqlite3* db, absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return SqliteError(db, absl::StrCat("prepare ", sql.substr(0, 80)));
  }
  return Stmt(db, stmt);
}

Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_.get(), i, v);
  return *this;
}

Stmt& Stmt::Bind(int i, absl::string_view text) {
  sqlite3_bind_text(stmt_.get(), i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindBlob(int i, absl::string_view blob) {
  sqlite3_bind_blob(stmt_.get(), i, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(stmt_.get(), i);
  return *this;
}

absl::StatusOr<bool> Stmt::Step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, absl::StrCat("step ", sqlite3_sql(stmt_.get())));
}

absl::Status Stmt::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

void Stmt::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

int64_t Stmt::Int(int col) const { return sqlite3_column_int64(stmt_.get(), col); }

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_.get(), col);
  return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_.get(), col))
           : std::string();
}

std::string Stmt::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_.get(), col);
  return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt_.get(), col))
           : std::string();
}

bool Stmt::IsNull(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }

}  // namespace kfleet::controller

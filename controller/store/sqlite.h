// A thin RAII layer over sqlite3: an owned connection, prepared statements with typed binds, and
// schema migrations. Not thread-safe; callers serialise access (SqliteStore holds a mutex).
#ifndef KFLEET_CONTROLLER_STORE_SQLITE_H_
#define KFLEET_CONTROLLER_STORE_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet::controller {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteCloser>;

// Opens `path` in WAL mode with synchronous=FULL, so a committed transaction survives a crash.
absl::StatusOr<SqliteDb> OpenSqlite(const std::string& path);

// Runs `sql` (one or more statements, no results).
absl::Status Exec(sqlite3* db, absl::string_view sql);

// Brings the schema to the last of `migrations` (index i is version i+1), each in its own
// transaction, recording the version in `schema_version`. A database newer than this binary is
// refused with FailedPrecondition.
absl::Status Migrate(sqlite3* db, const std::vector<std::string>& migrations);

// A prepared statement. Bind indexes start at 1; column indexes at 0.
class Stmt {
 public:
  static absl::StatusOr<Stmt> Prepare(sqlite3* db, absl::string_view sql);

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, absl::string_view text);
  Stmt& BindBlob(int i, absl::string_view blob);
  Stmt& BindNull(int i);

  // Steps once: true if a row is ready, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion (for statements without results).
  absl::Status Run();
  // Makes the statement ready to bind and step again.
  void Reset();

  int64_t Int(int col) const;
  std::string Text(int col) const;
  std::string Blob(int col) const;
  bool IsNull(int col) const;

 private:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
};

absl::Status SqliteError(sqlite3* db, absl::string_view what);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_STORE_SQLITE_H_

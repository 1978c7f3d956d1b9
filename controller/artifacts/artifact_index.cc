#include "controller/artifacts/artifact_index.h"

#include <sqlite3.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/status_macros.h"

namespace kfleet::controller {
namespace {

using kfleet::v1::Artifact;
using kfleet::v1::KernelBuild;

// Index i holds the SQL that brings the schema from version i to i+1. Append only.
const std::vector<std::string>& Migrations() {
  static const auto* kMigrations = new std::vector<std::string>{
      R"sql(
CREATE TABLE command_artifacts (
  command_id TEXT NOT NULL,
  job_id TEXT NOT NULL,
  host_name TEXT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  UNIQUE (command_id, name)
);
CREATE INDEX command_artifacts_by_job ON command_artifacts(job_id, created_ms);
CREATE INDEX command_artifacts_by_sha256 ON command_artifacts(sha256);
CREATE TABLE builds (
  identity TEXT PRIMARY KEY,
  build BLOB NOT NULL,           -- kfleet.v1.KernelBuild
  command_id TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
)sql",
  };
  return *kMigrations;
}

absl::Status ValidateCommandId(const std::string& command_id) {
  if (IsValidId(command_id)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("command id \"", command_id.substr(0, 80),
                   "\" is not an id: expected 1 to 64 characters of [A-Za-z0-9._-]"));
}

absl::Status ValidateIdentity(const std::string& identity) {
  bool ok = !identity.empty() && identity.size() <= 128;
  for (char c : identity) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '+' || c == '-');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("kernel build identity \"", identity.substr(0, 80),
                   "\" is not 1 to 128 characters of [A-Za-z0-9._+-]: send the sha256 hex of "
                   "the build's inputs"));
}

absl::Status ValidateArtifact(const Artifact& a) {
  RETURN_IF_ERROR(ValidateArtifactName(a.name()));
  RETURN_IF_ERROR(ValidateArtifactKind(a.kind()));
  return ValidateSha256(a.sha256(), absl::StrCat("sha256 of ", a.name()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ArtifactIndex>> ArtifactIndex::Open(
    const std::string& path, BlobStore* blobs, CommandOwnerFn owner,
    std::function<absl::Time()> now) {
  ASSIGN_OR_RETURN(SqliteDb db, OpenSqlite(path));
  RETURN_IF_ERROR(Migrate(db.get(), Migrations()));
  return std::unique_ptr<ArtifactIndex>(
      new ArtifactIndex(std::move(db), blobs, std::move(owner), std::move(now)));
}

template <typename Fn>
absl::Status ArtifactIndex::InTransaction(Fn fn) {
  RETURN_IF_ERROR(Exec(db_.get(), "BEGIN IMMEDIATE"));
  absl::Status s = fn();
  if (s.ok()) s = Exec(db_.get(), "COMMIT");
  if (!s.ok()) Exec(db_.get(), "ROLLBACK").IgnoreError();
  return s;
}

absl::StatusOr<CommandOwner> ArtifactIndex::Owner(const std::string& command_id) {
  RETURN_IF_ERROR(ValidateCommandId(command_id));
  absl::StatusOr<CommandOwner> owner = owner_(command_id);
  if (absl::IsNotFound(owner.status())) {
    return absl::NotFoundError(absl::StrCat(
        "no command \"", command_id,
        "\": artifacts are uploaded for a command the controller dispatched (or with no "
        "command id)"));
  }
  return owner;
}

absl::Status ArtifactIndex::CheckStored(const Artifact& artifact, const std::string& what) {
  ASSIGN_OR_RETURN(BlobStat stat, blobs_->Stat(artifact.sha256()));
  if (!stat.stored) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": artifact ", artifact.name(), " (sha256 ", artifact.sha256(),
                     ") is not in the artifact store: upload it first"));
  }
  if (stat.size != artifact.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": artifact ", artifact.name(), " says ", artifact.size(),
                     " bytes but its blob holds ", stat.size, ": send the stored size"));
  }
  return absl::OkStatus();
}

absl::Status ArtifactIndex::InsertLink(const std::string& command_id, const CommandOwner& owner,
                                       const Artifact& artifact, int64_t now_ms) {
  ASSIGN_OR_RETURN(Stmt existing, Stmt::Prepare(db_.get(),
                                                "SELECT sha256 FROM command_artifacts "
                                                "WHERE command_id = ?1 AND name = ?2"));
  existing.Bind(1, command_id).Bind(2, artifact.name());
  ASSIGN_OR_RETURN(bool found, existing.Step());
  if (found) {
    if (existing.Text(0) == artifact.sha256()) return absl::OkStatus();
    return absl::AlreadyExistsError(
        absl::StrCat("command ", command_id, " already has an artifact ", artifact.name(),
                     " with sha256 ", existing.Text(0), ": upload this one under another name"));
  }
  ASSIGN_OR_RETURN(Stmt insert, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO command_artifacts (command_id, job_id, host_name, name, kind, sha256, size, created_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8))sql"));
  insert.Bind(1, command_id)
      .Bind(2, owner.job_id)
      .Bind(3, owner.host_name)
      .Bind(4, artifact.name())
      .Bind(5, artifact.kind())
      .Bind(6, artifact.sha256())
      .Bind(7, static_cast<int64_t>(artifact.size()))
      .Bind(8, now_ms);
  return insert.Run();
}

absl::Status ArtifactIndex::CheckLink(const std::string& command_id, const std::string& name,
                                      const std::string& sha256) {
  ASSIGN_OR_RETURN(CommandOwner owner, Owner(command_id));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt existing, Stmt::Prepare(db_.get(),
                                                "SELECT sha256 FROM command_artifacts "
                                                "WHERE command_id = ?1 AND name = ?2"));
  existing.Bind(1, command_id).Bind(2, name);
  ASSIGN_OR_RETURN(bool found, existing.Step());
  if (found && existing.Text(0) != sha256) {
    return absl::AlreadyExistsError(
        absl::StrCat("command ", command_id, " already has an artifact ", name, " with sha256 ",
                     existing.Text(0), ": upload this one under another name"));
  }
  return absl::OkStatus();
}

absl::Status ArtifactIndex::LinkArtifact(const std::string& command_id, const Artifact& artifact) {
  RETURN_IF_ERROR(ValidateArtifact(artifact));
  RETURN_IF_ERROR(CheckStored(artifact, absl::StrCat("command ", command_id)));
  ASSIGN_OR_RETURN(CommandOwner owner, Owner(command_id));
  int64_t now_ms = absl::ToUnixMillis(now_());
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return InsertLink(command_id, owner, artifact, now_ms);
  });
}

absl::Status ArtifactIndex::RecordBuild(const KernelBuild& build, const std::string& command_id) {
  RETURN_IF_ERROR(ValidateIdentity(build.identity()));
  std::string what = absl::StrCat("kernel build ", build.identity());
  if (build.artifacts().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has no artifacts: upload the kernel image and list it"));
  }
  for (const Artifact& a : build.artifacts()) {
    RETURN_IF_ERROR(ValidateArtifact(a));
    RETURN_IF_ERROR(CheckStored(a, what));
  }
  CommandOwner owner;
  if (!command_id.empty()) {
    ASSIGN_OR_RETURN(owner, Owner(command_id));
  }
  KernelBuild stored = build;
  stored.clear_reused();
  int64_t now_ms = absl::ToUnixMillis(now_());
  absl::MutexLock lock(&mu_);
  return InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(Stmt insert, Stmt::Prepare(db_.get(), R"sql(
INSERT INTO builds (identity, build, command_id, created_ms) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT(identity) DO NOTHING)sql"));
    insert.Bind(1, stored.identity())
        .BindBlob(2, stored.SerializeAsString())
        .Bind(3, command_id)
        .Bind(4, now_ms);
    RETURN_IF_ERROR(insert.Run());
    if (sqlite3_changes(db_.get()) == 0) {
      // Stored before: the kernel stays as it was; artifacts it lacks (the kselftest archive of
      // another target set, built for a reused kernel) are added to it.
      ASSIGN_OR_RETURN(Stmt get,
                       Stmt::Prepare(db_.get(), "SELECT build FROM builds WHERE identity = ?1"));
      get.Bind(1, stored.identity());
      ASSIGN_OR_RETURN(bool row, get.Step());
      if (row) {
        KernelBuild have;
        have.ParseFromString(get.Blob(0));
        bool added = false;
        for (const Artifact& a : stored.artifacts()) {
          bool known = false;
          for (const Artifact& h : have.artifacts()) known |= h.name() == a.name();
          if (!known) {
            *have.add_artifacts() = a;
            added = true;
          }
        }
        if (added) {
          ASSIGN_OR_RETURN(Stmt up, Stmt::Prepare(db_.get(),
                                                  "UPDATE builds SET build = ?1 WHERE identity "
                                                  "= ?2"));
          up.BindBlob(1, have.SerializeAsString()).Bind(2, stored.identity());
          RETURN_IF_ERROR(up.Run());
        }
      }
    }
    if (command_id.empty()) return absl::OkStatus();
    for (const Artifact& a : stored.artifacts()) {
      RETURN_IF_ERROR(InsertLink(command_id, owner, a, now_ms));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<KernelBuild> ArtifactIndex::LookupBuild(const std::string& identity) {
  RETURN_IF_ERROR(ValidateIdentity(identity));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Stmt s,
                   Stmt::Prepare(db_.get(), "SELECT build FROM builds WHERE identity = ?1"));
  s.Bind(1, identity);
  ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) {
    return absl::NotFoundError(absl::StrCat("no kernel build with identity ", identity,
                                            " is stored: a kernel_build step builds it"));
  }
  KernelBuild build;
  if (!build.ParseFromString(s.Blob(0))) {
    return absl::DataLossError(
        absl::StrCat("the stored kernel build ", identity, " does not parse: index.db is damaged"));
  }
  return build;
}

absl::StatusOr<v1::ListArtifactsResponse> ArtifactIndex::ListArtifacts(
    const v1::ListArtifactsRequest& target) {
  std::string where;
  std::string key;
  if (target.has_job_id() && !target.job_id().empty()) {
    where = "job_id";
    key = target.job_id();
  } else if (target.has_command_id() && !target.command_id().empty()) {
    where = "command_id";
    key = target.command_id();
  } else {
    return absl::InvalidArgumentError(
        "ListArtifacts needs a job_id or a command_id: `kctl jobs` lists the jobs");
  }
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(
      Stmt s,
      Stmt::Prepare(db_.get(), absl::StrCat("SELECT job_id, command_id, host_name, name, kind, "
                                            "sha256, size FROM command_artifacts WHERE ",
                                            where, " = ?1 ORDER BY created_ms, rowid")));
  s.Bind(1, key);
  v1::ListArtifactsResponse out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::CommandArtifact* ca = out.add_artifacts();
    ca->set_job_id(s.Text(0));
    ca->set_command_id(s.Text(1));
    ca->set_host_name(s.Text(2));
    Artifact* a = ca->mutable_artifact();
    a->set_name(s.Text(3));
    a->set_kind(s.Text(4));
    a->set_sha256(s.Text(5));
    a->set_size(static_cast<uint64_t>(s.Int(6)));
  }
  return out;
}

}  // namespace kfleet::controller

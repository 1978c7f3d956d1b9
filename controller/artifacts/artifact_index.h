// What the artifact store knows about its blobs, in SQLite (<artifact root>/index.db, apart from
// the main state database): which command produced which artifact, and the kernel builds by
// identity. The blobs themselves are in the BlobStore.
#ifndef KFLEET_CONTROLLER_ARTIFACTS_ARTIFACT_INDEX_H_
#define KFLEET_CONTROLLER_ARTIFACTS_ARTIFACT_INDEX_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/artifacts/blob_store.h"
#include "controller/store/sqlite.h"
#include "kfleet/v1/artifacts.pb.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::controller {

// The job and host of a command, as the controller's main store knows them.
struct CommandOwner {
  std::string job_id;
  std::string host_name;
};

// Resolves a command id; NotFound for an unknown command. Called without any index lock held.
using CommandOwnerFn = std::function<absl::StatusOr<CommandOwner>(const std::string& command_id)>;

// Thread-safe: one connection behind a mutex, every method one transaction. Methods block on
// SQLite (and the blob store's disk): call them from the executor.
class ArtifactIndex {
 public:
  // Opens or creates the database at `path` and migrates its schema. `blobs` must outlive the
  // index. `now` is the clock for created_ms.
  static absl::StatusOr<std::unique_ptr<ArtifactIndex>> Open(
      const std::string& path, BlobStore* blobs, CommandOwnerFn owner,
      std::function<absl::Time()> now = [] { return absl::Now(); });

  // Whether LinkArtifact(command_id, {name, sha256}) would be accepted: NotFound for an unknown
  // command, AlreadyExists if the command has another blob under `name`, InvalidArgument for a
  // malformed id. The upload service asks before it accepts any data.
  absl::Status CheckLink(const std::string& command_id, const std::string& name,
                         const std::string& sha256);

  // Records that `command_id` produced `artifact`. The blob must be stored (FailedPrecondition
  // otherwise). Linking the same name and sha256 again changes nothing; the same name with
  // another sha256 is AlreadyExists.
  absl::Status LinkArtifact(const std::string& command_id, const kfleet::v1::Artifact& artifact);

  // Stores `build` under its identity and links its artifacts to `command_id` (if not empty).
  // Refused with FailedPrecondition if any artifact's blob is not stored with that size. An
  // identity already recorded keeps its first build (the artifacts are still linked). `reused`
  // is not stored: it describes one command, not the build.
  absl::Status RecordBuild(const kfleet::v1::KernelBuild& build, const std::string& command_id);

  // The build recorded under `identity`, NotFound if none.
  absl::StatusOr<kfleet::v1::KernelBuild> LookupBuild(const std::string& identity);

  // The artifacts of a job's commands, or of one command, in the order they were linked.
  // InvalidArgument if neither is set.
  absl::StatusOr<kfleet::v1::ListArtifactsResponse> ListArtifacts(
      const kfleet::v1::ListArtifactsRequest& target);

 private:
  ArtifactIndex(SqliteDb db, BlobStore* blobs, CommandOwnerFn owner,
                std::function<absl::Time()> now)
      : db_(std::move(db)), blobs_(blobs), owner_(std::move(owner)), now_(std::move(now)) {}

  // The artifact's blob is stored with its size; FailedPrecondition naming `what` otherwise.
  absl::Status CheckStored(const kfleet::v1::Artifact& artifact, const std::string& what);
  absl::StatusOr<CommandOwner> Owner(const std::string& command_id);
  // Inserts the link unless it exists; AlreadyExists if the name holds another sha256.
  absl::Status InsertLink(const std::string& command_id, const CommandOwner& owner,
                          const kfleet::v1::Artifact& artifact, int64_t now_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  template <typename Fn>
  absl::Status InTransaction(Fn fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  SqliteDb db_ ABSL_GUARDED_BY(mu_);
  BlobStore* const blobs_;
  const CommandOwnerFn owner_;
  const std::function<absl::Time()> now_;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_ARTIFACTS_ARTIFACT_INDEX_H_

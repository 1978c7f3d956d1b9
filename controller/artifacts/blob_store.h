// The controller's content-addressed blob store (DESIGN.md, "Data model: Artifacts"). A blob lives
// at <root>/sha256/<first 2 hex>/<64 hex>, read-only, and is immutable once there. An upload grows
// <root>/partial/<sha256>.part; when all its bytes are in, it is verified (sha256 and size) and
// renamed into place atomically, so a blob path never holds anything but the verified content.
//
// Uploads of one sha256 are serialized: while one is in progress, BeginUpload of the same sha256
// fails with ABORTED at once instead of waiting, so that no executor thread blocks on another
// client. The second client retries; by then Stat says stored (and its upload is deduplicated) or
// how many bytes to resume from.
#ifndef KFLEET_CONTROLLER_ARTIFACTS_BLOB_STORE_H_
#define KFLEET_CONTROLLER_ARTIFACTS_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/sha256.h"

namespace kfleet::controller {

inline constexpr uint64_t kDefaultMaxBlobBytes = uint64_t{4} << 30;

// An artifact's file name: 1 to 255 bytes of [A-Za-z0-9._+-], not "." or "..". InvalidArgument
// naming the problem otherwise.
absl::Status ValidateArtifactName(absl::string_view name);
// An artifact kind: empty, or up to 64 bytes of [A-Za-z0-9._-].
absl::Status ValidateArtifactKind(absl::string_view kind);
// 64 lower-case hex digits; `what` names the field in the error ("sha256 of vmlinuz").
absl::Status ValidateSha256(absl::string_view sha256, absl::string_view what);

struct BlobStat {
  bool stored = false;         // complete and verified
  uint64_t size = 0;           // when stored
  uint64_t partial_bytes = 0;  // bytes kept of an interrupted upload
};

// What an upload declares about its blob (kfleet.v1.UploadHeader without the command).
struct UploadSpec {
  std::string name;  // for messages only: blobs are addressed by sha256
  std::string sha256;
  uint64_t size = 0;
  uint64_t offset = 0;  // where this upload's data starts: the partial's length
};

class BlobStore;

// One upload in progress; holds its sha256's upload lock until destroyed. Not thread-safe: one
// caller at a time (calls are blocking disk I/O, for the executor).
class BlobUpload {
 public:
  ~BlobUpload();
  BlobUpload(const BlobUpload&) = delete;
  BlobUpload& operator=(const BlobUpload&) = delete;

  // The blob was stored already: nothing is to be written and Commit is not needed.
  bool deduplicated() const { return deduplicated_; }
  // Bytes of the blob received so far (offset of the next Append).
  uint64_t received() const { return received_; }
  const UploadSpec& spec() const { return spec_; }

  // Appends the next piece. More data than the declared size is DataLoss and deletes the partial.
  absl::Status Append(absl::string_view data);
  // After the last piece: verifies sha256 and size, then renames the blob into place durably.
  // Fewer bytes than the size is FailedPrecondition and keeps them for a resume; a wrong sha256 is
  // DataLoss and deletes the partial ("nothing stored").
  absl::Status Commit();
  // Makes the bytes received durable for a later resume and closes the partial (the upload was
  // interrupted). Commit and Suspend end the upload; later calls fail.
  absl::Status Suspend();

 private:
  friend class BlobStore;
  BlobUpload(BlobStore* store, UploadSpec spec);
  // Closes the partial and deletes it.
  void Discard();

  BlobStore* const store_;
  const UploadSpec spec_;
  bool deduplicated_ = false;
  int fd_ = -1;
  uint64_t received_ = 0;
  std::optional<Sha256> hasher_;
};

// A stored blob opened for reading. Blobs are immutable, so reads need no lock.
class BlobReader {
 public:
  ~BlobReader();
  BlobReader(const BlobReader&) = delete;
  BlobReader& operator=(const BlobReader&) = delete;

  uint64_t size() const { return size_; }
  // Up to `max_bytes` from `offset`; empty at the end.
  absl::StatusOr<std::string> Read(uint64_t offset, size_t max_bytes) const;

 private:
  friend class BlobStore;
  BlobReader(int fd, uint64_t size, std::string path)
      : fd_(fd), size_(size), path_(std::move(path)) {}

  const int fd_;
  const uint64_t size_;
  const std::string path_;
};

// Thread-safe. Every method does blocking disk I/O: call it from the executor, not a reaction.
class BlobStore {
 public:
  struct Options {
    std::string root;  // created if missing
    uint64_t max_blob_bytes = kDefaultMaxBlobBytes;
  };

  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(Options options);

  // InvalidArgument for a malformed sha256.
  absl::StatusOr<BlobStat> Stat(const std::string& sha256) const;

  // Starts or resumes the upload of `spec`. Errors: InvalidArgument for a bad name, sha256 or
  // size (over the limit); Aborted while another upload of the sha256 is in progress;
  // FailedPrecondition when spec.offset is not the partial's length. A blob already stored gives
  // an upload with deduplicated() set (no partial is opened).
  absl::StatusOr<std::unique_ptr<BlobUpload>> BeginUpload(const UploadSpec& spec);

  // NotFound if the blob is not stored.
  absl::StatusOr<std::unique_ptr<BlobReader>> OpenBlob(const std::string& sha256) const;

  std::string BlobPath(const std::string& sha256) const;
  std::string PartialPath(const std::string& sha256) const;
  const Options& options() const { return options_; }

 private:
  friend class BlobUpload;
  explicit BlobStore(Options options) : options_(std::move(options)) {}
  void Unlock(const std::string& sha256);

  const Options options_;
  absl::Mutex mu_;
  std::set<std::string> uploading_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_ARTIFACTS_BLOB_STORE_H_

// The client side of ArtifactService for agents and kctl: upload a file, download a blob, both
// resuming after a broken connection and verifying sha256 and size. Blocking calls: each RPC has a
// deadline (streams: a base plus the time the remaining bytes take at a minimum rate), and retries
// are bounded with capped exponential backoff.
#ifndef KFLEET_COMMON_ARTIFACT_CLIENT_H_
#define KFLEET_COMMON_ARTIFACT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet {

struct TransferOptions {
  absl::Duration rpc_timeout = absl::Seconds(10);  // Stat
  // A stream's deadline: base + remaining bytes / min_bytes_per_second.
  absl::Duration stream_timeout_base = absl::Seconds(60);
  uint64_t min_bytes_per_second = 1 << 20;
  // Attempts in all (the first included) for retryable errors: UNAVAILABLE, DEADLINE_EXCEEDED,
  // a broken stream. An upload turned away because another client is uploading the same blob
  // (ABORTED) waits for it with backoff, without counting attempts, up to the stream deadline of
  // the whole file.
  int max_attempts = 5;
  absl::Duration backoff_min = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(10);
  // Called on the calling thread when a transfer starts and after each chunk, with the bytes of
  // the blob done (counting what a resume skipped) and the blob's size. Optional.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Optional: once notified, a wait between attempts ends the transfer with CANCELLED.
  const absl::Notification* stop = nullptr;
  // Downloads: the caller's command that names the blob (an agent may fetch only those).
  std::string command_id;
};

struct UploadResult {
  kfleet::v1::Artifact artifact;
  bool deduplicated = false;  // the controller had the blob: no data was sent
  uint64_t bytes_sent = 0;    // data bytes sent, over all attempts
};

// Uploads the file at `path` as artifact `name` of `kind`, produced by `command_id` (may be
// empty). Hashes the file, asks Stat, and sends only what the controller lacks: nothing if it is
// stored (a header alone links it to the command), the rest from partial_bytes after an
// interrupted upload. DATA_LOSS if the file does not match what was hashed (it changed while
// uploading).
absl::StatusOr<UploadResult> UploadFile(kfleet::v1::ArtifactService::StubInterface& stub,
                                        const std::string& path, const std::string& name,
                                        const std::string& kind, const std::string& command_id,
                                        const TransferOptions& options = {});

// Downloads blob `sha256` to `dest_path` through `dest_path`.part: a .part left by an interrupted
// download is resumed from its size. The whole file is verified (sha256 and size) before it is
// renamed into place; a mismatch is DATA_LOSS and the .part is removed. NOT_FOUND if the
// controller does not have the blob.
absl::Status DownloadFile(kfleet::v1::ArtifactService::StubInterface& stub,
                          const std::string& sha256, const std::string& dest_path,
                          const TransferOptions& options = {});

}  // namespace kfleet

#endif  // KFLEET_COMMON_ARTIFACT_CLIENT_H_

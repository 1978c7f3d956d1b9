// The artifact service's streaming calls: Upload (a read reactor) and Download (a write reactor).
// Each keeps at most one read or write in flight and does its disk work on the executor, so gRPC
// flow control paces a client to the speed of the disk.
#ifndef KFLEET_CONTROLLER_ARTIFACTS_ARTIFACT_STREAMS_H_
#define KFLEET_CONTROLLER_ARTIFACTS_ARTIFACT_STREAMS_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/executor.h"
#include "controller/artifacts/artifact_index.h"
#include "controller/artifacts/blob_store.h"
#include "kfleet/v1/artifacts.pb.h"

namespace kfleet::controller {

// Largest piece of a blob in one UploadRequest or DownloadChunk (the server accepts messages of
// up to 4 MiB, so a chunk and its framing always fit).
inline constexpr size_t kArtifactChunkBytes = 1 << 20;

// Totals since start, for metrics and tests.
struct ArtifactCounters {
  std::atomic<uint64_t> bytes_received{0};  // upload data written to partials
  std::atomic<uint64_t> bytes_sent{0};      // download data handed to gRPC
  std::atomic<uint64_t> uploads_stored{0};  // blobs verified and stored
  std::atomic<uint64_t> uploads_deduplicated{0};
  std::atomic<uint64_t> downloads_resumed{0};  // downloads that started at a non-zero offset
};

// All pointers outlive the service and every call it runs.
struct ArtifactDeps {
  BlobStore* blobs;
  ArtifactIndex* index;
  Executor* executor;
  ArtifactCounters* counters;
  // Run on the executor before a download or upload starts; a non-OK status refuses it (an
  // agent may fetch only what its own commands name, and upload only for its own commands).
  // Unset: everything is allowed.
  std::function<absl::Status(const kfleet::v1::DownloadRequest&)> may_download;
  std::function<absl::Status(const std::string& command_id)> may_upload;
};

// Stores the blob declared by the first message (a header) from the data messages that follow,
// then links it to the header's command. A stream broken before the end keeps the bytes received
// for a resume (Stat's partial_bytes).
grpc::ServerReadReactor<kfleet::v1::UploadRequest>* StartUpload(ArtifactDeps deps,
                                                                grpc::CallbackServerContext* ctx,
                                                                kfleet::v1::UploadResponse* resp);

// Sends the blob from req.offset in chunks; the first chunk carries the blob's size.
grpc::ServerWriteReactor<kfleet::v1::DownloadChunk>* StartDownload(
    ArtifactDeps deps, const kfleet::v1::DownloadRequest& req);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_ARTIFACTS_ARTIFACT_STREAMS_H_

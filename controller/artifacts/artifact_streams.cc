#include "controller/artifacts/artifact_streams.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"

namespace kfleet::controller {
namespace {

using kfleet::v1::DownloadChunk;
using kfleet::v1::UploadRequest;

// Lifetimes: a reactor owns itself (self_) from Begin() until OnDone, and every executor task
// holds a shared_ptr to it, so a task still running after OnDone never touches freed memory.
// Reads (or writes) and executor tasks alternate: at any time at most one of them is in flight,
// so the upload state needs no lock; only `ended_` is shared with OnCancel.
class UploadReactor final : public grpc::ServerReadReactor<UploadRequest>,
                            public std::enable_shared_from_this<UploadReactor> {
 public:
  UploadReactor(ArtifactDeps deps, grpc::CallbackServerContext* ctx, v1::UploadResponse* resp)
      : deps_(deps), ctx_(ctx), resp_(resp) {}

  void Begin() {
    self_ = shared_from_this();
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed, or the call broke (then IsCancelled() tells, see Complete).
      if (!header_seen_) {
        return End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "upload stream ended without a header: send an UploadHeader "
                                "(sha256, size, offset, name) first"));
      }
      return Post(&UploadReactor::Complete);
    }
    if (!header_seen_) {
      if (!req_.has_header()) {
        return End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "the first upload message must be an UploadHeader (sha256, size, "
                                "offset, name), then data"));
      }
      header_seen_ = true;
      header_ = std::move(*req_.mutable_header());
      return Post(&UploadReactor::Open);
    }
    if (req_.has_header()) {
      return PostFail(absl::InvalidArgumentError(absl::StrCat(
          "upload of ", header_.name(), ": a second header; only data may follow the header")));
    }
    if (req_.data().size() > kArtifactChunkBytes) {
      return PostFail(absl::InvalidArgumentError(
          absl::StrCat("upload of ", header_.name(), ": a data message of ", req_.data().size(),
                       " bytes; send at most ", kArtifactChunkBytes, " bytes per message")));
    }
    data_ = std::move(*req_.mutable_data());
    req_.Clear();
    Post(&UploadReactor::Append);
  }

  void OnCancel() override {
    // A read is outstanding or one starts after the current executor task: it fails, and
    // Complete sees the cancellation and keeps the bytes received for a resume.
    cancelled_ = true;
  }

  void OnDone() override { std::shared_ptr<UploadReactor> keep = std::move(self_); }

 private:
  void Post(void (UploadReactor::*step)()) {
    deps_.executor->Post([self = shared_from_this(), step] { (self.get()->*step)(); });
  }

  void PostFail(absl::Status status) {
    deps_.executor->Post(
        [self = shared_from_this(), status = std::move(status)] { self->Fail(status); });
  }

  // On the executor: checks the header, then opens (or resumes) the upload.
  void Open() {
    absl::Status s = [&]() -> absl::Status {
      if (header_.kind().empty()) header_.set_kind("file");
      RETURN_IF_ERROR(ValidateArtifactName(header_.name()));
      RETURN_IF_ERROR(ValidateArtifactKind(header_.kind()));
      RETURN_IF_ERROR(ValidateSha256(header_.sha256(), absl::StrCat("sha256 of ", header_.name())));
      if (deps_.may_upload) RETURN_IF_ERROR(deps_.may_upload(header_.command_id()));
      // Before any byte is accepted: the command must exist and not hold another blob by this name.
      if (!header_.command_id().empty()) {
        RETURN_IF_ERROR(
            deps_.index->CheckLink(header_.command_id(), header_.name(), header_.sha256()));
      }
      UploadSpec spec{header_.name(), header_.sha256(), header_.size(), header_.offset()};
      ASSIGN_OR_RETURN(upload_, deps_.blobs->BeginUpload(spec));
      return absl::OkStatus();
    }();
    if (!s.ok()) return Fail(s);
    if (upload_->deduplicated()) {
      // Stored already: nothing more is read. Data the client still sends is dropped by gRPC.
      ++deps_.counters->uploads_deduplicated;
      return Succeed(/*deduplicated=*/true);
    }
    StartRead(&req_);
  }

  // On the executor: writes the data message just read, then reads the next.
  void Append() {
    std::string data = std::move(data_);
    data_.clear();
    if (absl::Status s = upload_->Append(data); !s.ok()) return Fail(s);
    deps_.counters->bytes_received += data.size();
    StartRead(&req_);
  }

  // On the executor: the stream ended. Verifies and stores the blob, unless the call broke.
  void Complete() {
    if (cancelled_ || ctx_->IsCancelled()) {
      return Fail(absl::CancelledError(absl::StrCat("upload of ", header_.name(), " cancelled")));
    }
    if (absl::Status s = upload_->Commit(); !s.ok()) return Fail(s);
    ++deps_.counters->uploads_stored;
    Succeed(/*deduplicated=*/false);
  }

  void Succeed(bool deduplicated) {
    v1::Artifact* a = resp_->mutable_artifact();
    a->set_name(header_.name());
    a->set_kind(header_.kind());
    a->set_sha256(header_.sha256());
    a->set_size(header_.size());
    resp_->set_deduplicated(deduplicated);
    upload_.reset();  // releases the sha256's upload lock before the client hears back
    if (!header_.command_id().empty()) {
      if (absl::Status s = deps_.index->LinkArtifact(header_.command_id(), *a); !s.ok()) {
        return End(ToGrpcStatus(s));
      }
    }
    End(grpc::Status::OK);
  }

  // Ends the call with `status`, keeping what was received of an interrupted upload (a
  // DataLoss has deleted it already). Runs on the executor: Suspend syncs to disk.
  void Fail(const absl::Status& status) {
    if (upload_ != nullptr) {
      // The caller's error is what the client needs to hear; a failed sync only costs the
      // resume (the partial is verified in full before it is stored).
      upload_->Suspend().IgnoreError();
      upload_.reset();
    }
    End(ToGrpcStatus(status));
  }

  void End(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    ended_ = true;
    Finish(status);
  }

  const ArtifactDeps deps_;
  grpc::CallbackServerContext* const ctx_;
  v1::UploadResponse* const resp_;
  std::shared_ptr<UploadReactor> self_;
  std::atomic<bool> cancelled_{false};

  // Touched by one read completion or executor task at a time (see the class comment).
  UploadRequest req_;
  bool header_seen_ = false;
  v1::UploadHeader header_;
  std::string data_;
  std::unique_ptr<BlobUpload> upload_;

  absl::Mutex mu_;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

class DownloadReactor final : public grpc::ServerWriteReactor<DownloadChunk>,
                              public std::enable_shared_from_this<DownloadReactor> {
 public:
  DownloadReactor(ArtifactDeps deps, v1::DownloadRequest req) : deps_(deps), req_(std::move(req)) {}

  void Begin() {
    self_ = shared_from_this();
    Post(&DownloadReactor::Open);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return End(grpc::Status(grpc::StatusCode::CANCELLED, "download stream closed"));
    Post(&DownloadReactor::Next);
  }

  void OnCancel() override { End(grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled")); }

  void OnDone() override { std::shared_ptr<DownloadReactor> keep = std::move(self_); }

 private:
  void Post(void (DownloadReactor::*step)()) {
    deps_.executor->Post([self = shared_from_this(), step] { (self.get()->*step)(); });
  }

  // On the executor: opens the blob and sends the first chunk.
  void Open() {
    absl::Status s = [&]() -> absl::Status {
      RETURN_IF_ERROR(ValidateSha256(req_.sha256(), "sha256"));
      if (deps_.may_download) RETURN_IF_ERROR(deps_.may_download(req_));
      absl::StatusOr<std::unique_ptr<BlobReader>> reader = deps_.blobs->OpenBlob(req_.sha256());
      if (absl::IsNotFound(reader.status())) {
        return absl::NotFoundError(absl::StrCat("no artifact with sha256 ", req_.sha256(),
                                                " is stored: `kctl artifacts JOB` lists them"));
      }
      ASSIGN_OR_RETURN(reader_, std::move(reader));
      if (req_.offset() > reader_->size()) {
        return absl::OutOfRangeError(absl::StrCat(
            "download of ", req_.sha256(), " from offset ", req_.offset(), ": the blob has only ",
            reader_->size(), " bytes; discard the partial download and start from 0"));
      }
      return absl::OkStatus();
    }();
    if (!s.ok()) return End(ToGrpcStatus(s));
    if (req_.offset() > 0) ++deps_.counters->downloads_resumed;
    next_ = req_.offset();
    Next();
  }

  // On the executor: reads and writes the next chunk, or finishes after the last.
  void Next() {
    if (!first_ && next_ >= reader_->size()) return End(grpc::Status::OK);
    absl::StatusOr<std::string> data = reader_->Read(next_, kArtifactChunkBytes);
    if (!data.ok()) return End(ToGrpcStatus(data.status()));
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    chunk_.Clear();
    chunk_.set_offset(next_);
    if (first_) chunk_.set_size(reader_->size());
    first_ = false;
    next_ += data->size();
    deps_.counters->bytes_sent += data->size();
    chunk_.set_data(*std::move(data));
    StartWrite(&chunk_);
  }

  void End(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    ended_ = true;
    Finish(status);
  }

  const ArtifactDeps deps_;
  const v1::DownloadRequest req_;
  std::shared_ptr<DownloadReactor> self_;

  // Only executor tasks touch these, one at a time (each waits for the previous write).
  std::unique_ptr<BlobReader> reader_;
  uint64_t next_ = 0;
  bool first_ = true;

  absl::Mutex mu_;
  DownloadChunk chunk_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerReadReactor<UploadRequest>* StartUpload(ArtifactDeps deps,
                                                    grpc::CallbackServerContext* ctx,
                                                    v1::UploadResponse* resp) {
  auto r = std::make_shared<UploadReactor>(deps, ctx, resp);
  r->Begin();
  return r.get();
}

grpc::ServerWriteReactor<DownloadChunk>* StartDownload(ArtifactDeps deps,
                                                       const v1::DownloadRequest& req) {
  auto r = std::make_shared<DownloadReactor>(deps, req);
  r->Begin();
  return r.get();
}

}  // namespace kfleet::controller

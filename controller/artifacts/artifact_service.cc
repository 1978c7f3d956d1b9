#include "controller/artifacts/artifact_service.h"

#include <utility>

#include "common/grpc_status.h"
#include "common/status_macros.h"

namespace kfleet::controller {

template <typename Fn>
grpc::ServerUnaryReactor* ArtifactServiceImpl::OnExecutor(grpc::CallbackServerContext* ctx, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  deps_.executor->Post(
      [reactor, fn = std::move(fn)]() mutable { reactor->Finish(ToGrpcStatus(fn())); });
  return reactor;
}

grpc::ServerReadReactor<v1::UploadRequest>* ArtifactServiceImpl::Upload(
    grpc::CallbackServerContext* ctx, v1::UploadResponse* resp) {
  return StartUpload(StreamDeps(), ctx, resp);
}

grpc::ServerUnaryReactor* ArtifactServiceImpl::Stat(grpc::CallbackServerContext* ctx,
                                                    const v1::StatRequest* req,
                                                    v1::StatResponse* resp) {
  return OnExecutor(ctx, [this, req, resp]() -> absl::Status {
    ASSIGN_OR_RETURN(BlobStat stat, deps_.blobs->Stat(req->sha256()));
    resp->set_stored(stat.stored);
    resp->set_size(stat.size);
    resp->set_partial_bytes(stat.partial_bytes);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::DownloadChunk>* ArtifactServiceImpl::Download(
    grpc::CallbackServerContext*, const v1::DownloadRequest* req) {
  return StartDownload(StreamDeps(), *req);
}

grpc::ServerUnaryReactor* ArtifactServiceImpl::LookupBuild(grpc::CallbackServerContext* ctx,
                                                           const v1::LookupBuildRequest* req,
                                                           v1::KernelBuild* resp) {
  return OnExecutor(ctx, [this, req, resp]() -> absl::Status {
    ASSIGN_OR_RETURN(*resp, deps_.index->LookupBuild(req->identity()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ArtifactServiceImpl::ListArtifacts(grpc::CallbackServerContext* ctx,
                                                             const v1::ListArtifactsRequest* req,
                                                             v1::ListArtifactsResponse* resp) {
  return OnExecutor(ctx, [this, req, resp]() -> absl::Status {
    ASSIGN_OR_RETURN(*resp, deps_.index->ListArtifacts(*req));
    return absl::OkStatus();
  });
}

}  // namespace kfleet::controller

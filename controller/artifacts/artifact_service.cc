#include "controller/artifacts/artifact_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"

namespace kfleet::controller {

namespace {

// Streams refused before they began: they finish with the refusal and free themselves.
class RefusedUpload final : public grpc::ServerReadReactor<v1::UploadRequest> {
 public:
  explicit RefusedUpload(const absl::Status& refusal) { Finish(ToGrpcStatus(refusal)); }
  void OnDone() override { delete this; }
};

class RefusedDownload final : public grpc::ServerWriteReactor<v1::DownloadChunk> {
 public:
  explicit RefusedDownload(const absl::Status& refusal) { Finish(ToGrpcStatus(refusal)); }
  void OnDone() override { delete this; }
};

}  // namespace

absl::StatusOr<Identity> ArtifactServiceImpl::Caller(grpc::CallbackServerContext* ctx,
                                                     const char* method, Permission permission) {
  if (deps_.access == nullptr)
    return Identity{"insecure", "", "admin", "", absl::InfiniteFuture(), ""};
  return deps_.access->Authorize(*ctx, permission, method);
}

template <typename Fn>
grpc::ServerUnaryReactor* ArtifactServiceImpl::OnExecutor(grpc::CallbackServerContext* ctx,
                                                          const char* method, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (absl::StatusOr<Identity> who = Caller(ctx, method, Permission::kAgentOrRead); !who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  deps_.executor->Post(
      [reactor, fn = std::move(fn)]() mutable { reactor->Finish(ToGrpcStatus(fn())); });
  return reactor;
}

grpc::ServerReadReactor<v1::UploadRequest>* ArtifactServiceImpl::Upload(
    grpc::CallbackServerContext* ctx, v1::UploadResponse* resp) {
  absl::StatusOr<Identity> who = Caller(ctx, "ArtifactService/Upload", Permission::kAgent);
  if (!who.ok()) return new RefusedUpload(who.status());
  ArtifactDeps deps = StreamDeps();
  if (who->is_agent() && deps_.store != nullptr) {
    deps.may_upload = [store = deps_.store, host_id = who->name](const std::string& command_id) {
      absl::StatusOr<v1::CommandInfo> c = store->GetCommand(command_id);
      if (!c.ok() || c->host_id() != host_id) {
        return absl::PermissionDeniedError(
            absl::StrCat("host ", host_id, " may upload artifacts only for its own commands, and ",
                         command_id.substr(0, 64), " is not one"));
      }
      return absl::OkStatus();
    };
  }
  return StartUpload(deps, ctx, resp);
}

grpc::ServerUnaryReactor* ArtifactServiceImpl::Stat(grpc::CallbackServerContext* ctx,
                                                    const v1::StatRequest* req,
                                                    v1::StatResponse* resp) {
  return OnExecutor(ctx, "ArtifactService/Stat", [this, req, resp]() -> absl::Status {
    ASSIGN_OR_RETURN(BlobStat stat, deps_.blobs->Stat(req->sha256()));
    resp->set_stored(stat.stored);
    resp->set_size(stat.size);
    resp->set_partial_bytes(stat.partial_bytes);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::DownloadChunk>* ArtifactServiceImpl::Download(
    grpc::CallbackServerContext* ctx, const v1::DownloadRequest* req) {
  absl::StatusOr<Identity> who = Caller(ctx, "ArtifactService/Download", Permission::kAgentOrRead);
  if (!who.ok()) return new RefusedDownload(who.status());
  ArtifactDeps deps = StreamDeps();
  if (who->is_agent() && deps_.store != nullptr) {
    deps.may_download = [store = deps_.store,
                         host_id = who->name](const v1::DownloadRequest& r) -> absl::Status {
      auto refused = [&](absl::string_view why) {
        return absl::PermissionDeniedError(absl::StrCat(
            "host ", host_id, " may fetch only artifacts its own commands name: ", why));
      };
      if (r.command_id().empty()) return refused("the request names no command");
      absl::StatusOr<v1::CommandInfo> c = store->GetCommand(r.command_id());
      if (!c.ok() || c->host_id() != host_id) {
        return refused(absl::StrCat(r.command_id().substr(0, 64), " is not its command"));
      }
      if (c->step().SerializeAsString().find(r.sha256()) == std::string::npos) {
        return refused(
            absl::StrCat("command ", r.command_id(), " does not name ", r.sha256().substr(0, 12)));
      }
      return absl::OkStatus();
    };
  }
  return StartDownload(deps, *req);
}

grpc::ServerUnaryReactor* ArtifactServiceImpl::LookupBuild(grpc::CallbackServerContext* ctx,
                                                           const v1::LookupBuildRequest* req,
                                                           v1::KernelBuild* resp) {
  return OnExecutor(ctx, "ArtifactService/LookupBuild", [this, req, resp]() -> absl::Status {
    ASSIGN_OR_RETURN(*resp, deps_.index->LookupBuild(req->identity()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ArtifactServiceImpl::ListArtifacts(grpc::CallbackServerContext* ctx,
                                                             const v1::ListArtifactsRequest* req,
                                                             v1::ListArtifactsResponse* resp) {
  return OnExecutor(ctx, "ArtifactService/ListArtifacts", [this, req, resp]() -> absl::Status {
    ASSIGN_OR_RETURN(*resp, deps_.index->ListArtifacts(*req));
    return absl::OkStatus();
  });
}

}  // namespace kfleet::controller

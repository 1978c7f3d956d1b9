// ArtifactService (proto/kfleet/v1/artifacts.proto): the controller's artifact store on the wire.
// Unary calls run on the executor and finish from there; Upload and Download are reactors
// (artifact_streams.h). Errors follow the proto: DATA_LOSS for a blob that does not match its
// header, FAILED_PRECONDITION for a resume from the wrong offset, INVALID_ARGUMENT for names and
// hashes, ABORTED while another upload of the same blob is in progress.
#ifndef KFLEET_CONTROLLER_ARTIFACTS_ARTIFACT_SERVICE_H_
#define KFLEET_CONTROLLER_ARTIFACTS_ARTIFACT_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "common/executor.h"
#include "controller/artifacts/artifact_index.h"
#include "controller/artifacts/artifact_streams.h"
#include "controller/artifacts/blob_store.h"
#include "controller/security/access_control.h"
#include "controller/store/store.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet::controller {

class ArtifactServiceImpl : public kfleet::v1::ArtifactService::CallbackService {
 public:
  // All pointers outlive the service; the executor also outlives every call (destroy the server
  // first).
  struct Deps {
    BlobStore* blobs;
    ArtifactIndex* index;
    Executor* executor;
    // Who may call what; null: everyone (tests of the service alone). With it, agents download
    // only blobs their own commands name (checked against `store`) and upload only for their own
    // commands.
    AccessControl* access = nullptr;
    Store* store = nullptr;
  };
  explicit ArtifactServiceImpl(Deps deps) : deps_(deps) {}

  grpc::ServerReadReactor<kfleet::v1::UploadRequest>* Upload(
      grpc::CallbackServerContext* ctx, kfleet::v1::UploadResponse* resp) override;
  grpc::ServerUnaryReactor* Stat(grpc::CallbackServerContext* ctx,
                                 const kfleet::v1::StatRequest* req,
                                 kfleet::v1::StatResponse* resp) override;
  grpc::ServerWriteReactor<kfleet::v1::DownloadChunk>* Download(
      grpc::CallbackServerContext* ctx, const kfleet::v1::DownloadRequest* req) override;
  grpc::ServerUnaryReactor* LookupBuild(grpc::CallbackServerContext* ctx,
                                        const kfleet::v1::LookupBuildRequest* req,
                                        kfleet::v1::KernelBuild* resp) override;
  grpc::ServerUnaryReactor* ListArtifacts(grpc::CallbackServerContext* ctx,
                                          const kfleet::v1::ListArtifactsRequest* req,
                                          kfleet::v1::ListArtifactsResponse* resp) override;

  // For the controller: records a finished kernel_build command's build (blocking; call it from
  // the executor).
  ArtifactIndex* index() const { return deps_.index; }
  const ArtifactCounters& counters() const { return counters_; }

 private:
  template <typename Fn>
  grpc::ServerUnaryReactor* OnExecutor(grpc::CallbackServerContext* ctx, const char* method, Fn fn);
  // The caller's identity if it may use the artifact store at all.
  absl::StatusOr<Identity> Caller(grpc::CallbackServerContext* ctx, const char* method,
                                  Permission permission);
  ArtifactDeps StreamDeps() {
    return ArtifactDeps{deps_.blobs, deps_.index, deps_.executor, &counters_};
  }

  const Deps deps_;
  ArtifactCounters counters_;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_ARTIFACTS_ARTIFACT_SERVICE_H_

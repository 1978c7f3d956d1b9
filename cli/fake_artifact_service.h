// An ArtifactService for tests: lists canned artifacts and serves blobs from memory; records what
// it was asked. Upload and LookupBuild are not implemented.
#ifndef KFLEET_CLI_FAKE_ARTIFACT_SERVICE_H_
#define KFLEET_CLI_FAKE_ARTIFACT_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet::cli {

class FakeArtifactService : public v1::ArtifactService::Service {
 public:
  // Canned answers. Set before the first call; not changed while calls run.
  std::string job_id = "j-1";                // ListArtifacts knows this job, NOT_FOUND others
  v1::ListArtifactsResponse artifacts;       // ... and answers this for it
  std::map<std::string, std::string> blobs;  // by sha256: what Stat and Download know
  size_t chunk_bytes = 1 << 20;              // Download sends chunks of at most this

  // What was asked.
  v1::ListArtifactsRequest last_list() const;
  std::vector<v1::DownloadRequest> downloads() const;

  grpc::Status Stat(grpc::ServerContext*, const v1::StatRequest* request,
                    v1::StatResponse* response) override;
  grpc::Status Download(grpc::ServerContext*, const v1::DownloadRequest* request,
                        grpc::ServerWriter<v1::DownloadChunk>* writer) override;
  grpc::Status ListArtifacts(grpc::ServerContext*, const v1::ListArtifactsRequest* request,
                             v1::ListArtifactsResponse* response) override;

 private:
  mutable absl::Mutex mu_;
  v1::ListArtifactsRequest last_list_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::DownloadRequest> downloads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_FAKE_ARTIFACT_SERVICE_H_

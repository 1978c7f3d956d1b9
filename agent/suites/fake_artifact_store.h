// For tests of the test step: an ArtifactService that keeps blobs in memory, served by a real
// in-process gRPC server on a loopback port. Stores uploads (verified against their sha256),
// answers Stat and Download; LookupBuild and ListArtifacts are not implemented.
#ifndef KFLEET_AGENT_SUITES_FAKE_ARTIFACT_STORE_H_
#define KFLEET_AGENT_SUITES_FAKE_ARTIFACT_STORE_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet::agent {

class FakeArtifactStore : public kfleet::v1::ArtifactService::Service {
 public:
  // Starts the server; stub() talks to it.
  FakeArtifactStore();
  ~FakeArtifactStore() override;

  kfleet::v1::ArtifactService::StubInterface* stub() { return stub_.get(); }

  // Adds a blob (for downloads); returns its sha256.
  std::string Put(const std::string& data);
  // The uploads so far: artifact name -> contents.
  std::map<std::string, std::string> uploads() const;

  grpc::Status Stat(grpc::ServerContext*, const kfleet::v1::StatRequest* request,
                    kfleet::v1::StatResponse* response) override;
  grpc::Status Upload(grpc::ServerContext*, grpc::ServerReader<kfleet::v1::UploadRequest>* reader,
                      kfleet::v1::UploadResponse* response) override;
  grpc::Status Download(grpc::ServerContext*, const kfleet::v1::DownloadRequest* request,
                        grpc::ServerWriter<kfleet::v1::DownloadChunk>* writer) override;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> blobs_ ABSL_GUARDED_BY(mu_);    // by sha256
  std::map<std::string, std::string> uploads_ ABSL_GUARDED_BY(mu_);  // by name
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<kfleet::v1::ArtifactService::Stub> stub_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_FAKE_ARTIFACT_STORE_H_

// For tests of the agent's steps: an ArtifactService that keeps blobs and kernel builds in memory,
// served by a real in-process gRPC server on a loopback port. Stores uploads (verified against
// their sha256; a whole blob in one call, no resume), answers Stat and Download, and LookupBuild
// from the builds a test records, playing the controller. ListArtifacts is not implemented.
#ifndef KFLEET_AGENT_SUITES_FAKE_ARTIFACT_STORE_H_
#define KFLEET_AGENT_SUITES_FAKE_ARTIFACT_STORE_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <optional>
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
  // A stored blob, empty if there is none.
  std::string blob(const std::string& sha256) const;
  // The uploads so far, deduplicated ones included: artifact name -> contents.
  std::map<std::string, std::string> uploads() const;
  // Upload calls that sent data (not deduplicated), by artifact name.
  int data_uploads(const std::string& name) const;

  // Stores `build` under its identity. For an identity stored already, the artifacts whose names
  // the stored build lacks are added to it (so a reused kernel's new kselftest archive is found
  // by the next build), the rest is kept.
  void RecordBuild(const kfleet::v1::KernelBuild& build);
  // Answer LookupBuild with `build` (its identity set to the one asked) for every identity, as if
  // the store had every kernel: the kernel step then runs no make.
  void ServeAnyIdentity(const kfleet::v1::KernelBuild& build);

  grpc::Status Stat(grpc::ServerContext*, const kfleet::v1::StatRequest* request,
                    kfleet::v1::StatResponse* response) override;
  grpc::Status Upload(grpc::ServerContext*, grpc::ServerReader<kfleet::v1::UploadRequest>* reader,
                      kfleet::v1::UploadResponse* response) override;
  grpc::Status Download(grpc::ServerContext*, const kfleet::v1::DownloadRequest* request,
                        grpc::ServerWriter<kfleet::v1::DownloadChunk>* writer) override;
  grpc::Status LookupBuild(grpc::ServerContext*, const kfleet::v1::LookupBuildRequest* request,
                           kfleet::v1::KernelBuild* response) override;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> blobs_ ABSL_GUARDED_BY(mu_);               // by sha256
  std::map<std::string, std::string> uploads_ ABSL_GUARDED_BY(mu_);             // by name
  std::map<std::string, int> data_uploads_ ABSL_GUARDED_BY(mu_);                // by name
  std::map<std::string, kfleet::v1::KernelBuild> builds_ ABSL_GUARDED_BY(mu_);  // by identity
  std::optional<kfleet::v1::KernelBuild> any_build_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<kfleet::v1::ArtifactService::Stub> stub_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_FAKE_ARTIFACT_STORE_H_

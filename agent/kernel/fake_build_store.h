// An ArtifactService for the kernel step tests: blobs in memory, kernel builds by identity.
// Upload takes a whole blob in one call (no resume); Download and ListArtifacts are not
// implemented. A test plays the controller with RecordBuild after a kernel_build passed.
#ifndef KFLEET_AGENT_KERNEL_FAKE_BUILD_STORE_H_
#define KFLEET_AGENT_KERNEL_FAKE_BUILD_STORE_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "kfleet/v1/artifacts.grpc.pb.h"

namespace kfleet::agent {

class FakeBuildStore : public kfleet::v1::ArtifactService::Service {
 public:
  // Stores `build` under its identity. For an identity stored already, the artifacts whose names
  // the stored build lacks are added to it (so a reused kernel's new kselftest archive is found
  // by the next build), the rest is kept.
  void RecordBuild(const kfleet::v1::KernelBuild& build);
  // Answer LookupBuild with `build` (its identity set to the one asked) for every identity, as if
  // the store had every kernel: the kernel step then runs no make.
  void ServeAnyIdentity(const kfleet::v1::KernelBuild& build);

  // Upload calls that sent data (not deduplicated), by artifact name.
  int uploads(const std::string& name) const;
  // A stored blob, empty if there is none.
  std::string blob(const std::string& sha256) const;

  grpc::Status Stat(grpc::ServerContext*, const kfleet::v1::StatRequest* request,
                    kfleet::v1::StatResponse* response) override;
  grpc::Status Upload(grpc::ServerContext*, grpc::ServerReader<kfleet::v1::UploadRequest>* reader,
                      kfleet::v1::UploadResponse* response) override;
  grpc::Status LookupBuild(grpc::ServerContext*, const kfleet::v1::LookupBuildRequest* request,
                           kfleet::v1::KernelBuild* response) override;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> blobs_ ABSL_GUARDED_BY(mu_);  // by sha256
  std::map<std::string, kfleet::v1::KernelBuild> builds_ ABSL_GUARDED_BY(mu_);
  std::optional<kfleet::v1::KernelBuild> any_build_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> uploads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KERNEL_FAKE_BUILD_STORE_H_

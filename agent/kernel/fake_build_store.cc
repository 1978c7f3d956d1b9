#include "agent/kernel/fake_build_store.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace kfleet::agent {

namespace v1 = kfleet::v1;

void FakeBuildStore::RecordBuild(const v1::KernelBuild& build) {
  absl::MutexLock lock(&mu_);
  auto [it, added] = builds_.emplace(build.identity(), build);
  if (added) {
    it->second.clear_reused();
    return;
  }
  std::set<std::string> names;
  for (const v1::Artifact& a : it->second.artifacts()) names.insert(a.name());
  for (const v1::Artifact& a : build.artifacts()) {
    if (names.insert(a.name()).second) *it->second.add_artifacts() = a;
  }
}

void FakeBuildStore::ServeAnyIdentity(const v1::KernelBuild& build) {
  absl::MutexLock lock(&mu_);
  any_build_ = build;
}

int FakeBuildStore::uploads(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = uploads_.find(name);
  return it == uploads_.end() ? 0 : it->second;
}

std::string FakeBuildStore::blob(const std::string& sha256) const {
  absl::MutexLock lock(&mu_);
  auto it = blobs_.find(sha256);
  return it == blobs_.end() ? "" : it->second;
}

grpc::Status FakeBuildStore::Stat(grpc::ServerContext*, const v1::StatRequest* request,
                                  v1::StatResponse* response) {
  absl::MutexLock lock(&mu_);
  auto it = blobs_.find(request->sha256());
  if (it != blobs_.end()) {
    response->set_stored(true);
    response->set_size(it->second.size());
  }
  return grpc::Status::OK;
}

grpc::Status FakeBuildStore::Upload(grpc::ServerContext*,
                                    grpc::ServerReader<v1::UploadRequest>* reader,
                                    v1::UploadResponse* response) {
  v1::UploadRequest req;
  if (!reader->Read(&req) || !req.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "an upload starts with its header");
  }
  const v1::UploadHeader header = req.header();
  if (header.offset() != 0) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "the fake store does not resume");
  }
  std::string data;
  while (reader->Read(&req)) data += req.data();
  v1::Artifact* a = response->mutable_artifact();
  a->set_name(header.name());
  a->set_kind(header.kind());
  a->set_sha256(header.sha256());
  a->set_size(header.size());
  absl::MutexLock lock(&mu_);
  if (blobs_.count(header.sha256()) != 0) {
    response->set_deduplicated(true);
    return grpc::Status::OK;
  }
  absl::StatusOr<Sha256> h = Sha256::Create();
  if (!h.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "no sha256");
  h->Update(data);
  absl::StatusOr<std::string> hex = h->FinishHex();
  if (!hex.ok() || *hex != header.sha256() || data.size() != header.size()) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS,
                        absl::StrCat("the data of ", header.name(), " does not match its header"));
  }
  blobs_[header.sha256()] = std::move(data);
  ++uploads_[header.name()];
  return grpc::Status::OK;
}

grpc::Status FakeBuildStore::LookupBuild(grpc::ServerContext*,
                                         const v1::LookupBuildRequest* request,
                                         v1::KernelBuild* response) {
  absl::MutexLock lock(&mu_);
  auto it = builds_.find(request->identity());
  if (it != builds_.end()) {
    *response = it->second;
  } else if (any_build_.has_value()) {
    *response = *any_build_;
    response->set_identity(request->identity());
  } else {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such build");
  }
  return grpc::Status::OK;
}

}  // namespace kfleet::agent

#include "agent/suites/fake_artifact_store.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;

std::string HexOf(const std::string& data) {
  absl::StatusOr<Sha256> hasher = Sha256::Create();
  hasher->Update(data);
  return *hasher->FinishHex();
}

}  // namespace

FakeArtifactStore::FakeArtifactStore() {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  stub_ = v1::ArtifactService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
}

FakeArtifactStore::~FakeArtifactStore() { server_->Shutdown(); }

std::string FakeArtifactStore::Put(const std::string& data) {
  std::string sha = HexOf(data);
  absl::MutexLock lock(&mu_);
  blobs_[sha] = data;
  return sha;
}

std::string FakeArtifactStore::blob(const std::string& sha256) const {
  absl::MutexLock lock(&mu_);
  auto it = blobs_.find(sha256);
  return it == blobs_.end() ? "" : it->second;
}

std::map<std::string, std::string> FakeArtifactStore::uploads() const {
  absl::MutexLock lock(&mu_);
  return uploads_;
}

int FakeArtifactStore::data_uploads(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = data_uploads_.find(name);
  return it == data_uploads_.end() ? 0 : it->second;
}

void FakeArtifactStore::RecordBuild(const v1::KernelBuild& build) {
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

void FakeArtifactStore::ServeAnyIdentity(const v1::KernelBuild& build) {
  absl::MutexLock lock(&mu_);
  any_build_ = build;
}

grpc::Status FakeArtifactStore::Stat(grpc::ServerContext*, const v1::StatRequest* request,
                                     v1::StatResponse* response) {
  absl::MutexLock lock(&mu_);
  auto it = blobs_.find(request->sha256());
  if (it != blobs_.end()) {
    response->set_stored(true);
    response->set_size(it->second.size());
  }
  return grpc::Status::OK;
}

grpc::Status FakeArtifactStore::Upload(grpc::ServerContext*,
                                       grpc::ServerReader<v1::UploadRequest>* reader,
                                       v1::UploadResponse* response) {
  v1::UploadRequest req;
  if (!reader->Read(&req) || !req.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "an upload starts with its header");
  }
  const v1::UploadHeader header = req.header();
  std::string data;
  {
    // A stored blob is deduplicated: the client sends the header only, at offset = size.
    absl::MutexLock lock(&mu_);
    auto it = blobs_.find(header.sha256());
    if (it != blobs_.end()) {
      data = it->second;
      response->set_deduplicated(true);
    } else if (header.offset() != 0) {
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "the fake store does not resume");
    }
  }
  while (reader->Read(&req)) data += req.data();
  if (HexOf(data) != header.sha256() || data.size() != header.size()) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS,
                        absl::StrCat("the data of ", header.name(), " does not match its header"));
  }
  v1::Artifact* a = response->mutable_artifact();
  a->set_name(header.name());
  a->set_kind(header.kind());
  a->set_sha256(header.sha256());
  a->set_size(data.size());
  absl::MutexLock lock(&mu_);
  if (!response->deduplicated()) ++data_uploads_[header.name()];
  blobs_[header.sha256()] = data;
  uploads_[header.name()] = std::move(data);
  return grpc::Status::OK;
}

grpc::Status FakeArtifactStore::Download(grpc::ServerContext*, const v1::DownloadRequest* request,
                                         grpc::ServerWriter<v1::DownloadChunk>* writer) {
  std::string blob;
  {
    absl::MutexLock lock(&mu_);
    auto it = blobs_.find(request->sha256());
    if (it == blobs_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such blob");
    blob = it->second;
  }
  if (request->offset() > blob.size()) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "offset past the end");
  }
  v1::DownloadChunk chunk;
  chunk.set_offset(request->offset());
  chunk.set_size(blob.size());
  chunk.set_data(blob.substr(request->offset()));
  writer->Write(chunk);
  return grpc::Status::OK;
}

grpc::Status FakeArtifactStore::LookupBuild(grpc::ServerContext*,
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

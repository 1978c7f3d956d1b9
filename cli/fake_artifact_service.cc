#include "cli/fake_artifact_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kfleet::cli {

v1::ListArtifactsRequest FakeArtifactService::last_list() const {
  absl::MutexLock lock(&mu_);
  return last_list_;
}

std::vector<v1::DownloadRequest> FakeArtifactService::downloads() const {
  absl::MutexLock lock(&mu_);
  return downloads_;
}

grpc::Status FakeArtifactService::Stat(grpc::ServerContext*, const v1::StatRequest* request,
                                       v1::StatResponse* response) {
  auto it = blobs.find(request->sha256());
  if (it != blobs.end()) {
    response->set_stored(true);
    response->set_size(it->second.size());
  }
  return grpc::Status::OK;
}

grpc::Status FakeArtifactService::Download(grpc::ServerContext*, const v1::DownloadRequest* request,
                                           grpc::ServerWriter<v1::DownloadChunk>* writer) {
  {
    absl::MutexLock lock(&mu_);
    downloads_.push_back(*request);
  }
  auto it = blobs.find(request->sha256());
  if (it == blobs.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such blob");
  const std::string& blob = it->second;
  if (request->offset() > blob.size()) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "offset past the end");
  }
  for (size_t offset = request->offset(); offset < blob.size(); offset += chunk_bytes) {
    v1::DownloadChunk chunk;
    chunk.set_offset(offset);
    if (offset == request->offset()) chunk.set_size(blob.size());
    chunk.set_data(blob.substr(offset, chunk_bytes));
    if (!writer->Write(chunk)) break;
  }
  return grpc::Status::OK;
}

grpc::Status FakeArtifactService::ListArtifacts(grpc::ServerContext*,
                                                const v1::ListArtifactsRequest* request,
                                                v1::ListArtifactsResponse* response) {
  {
    absl::MutexLock lock(&mu_);
    last_list_ = *request;
  }
  if (request->job_id() != job_id && request->command_id().empty()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no job \"", request->job_id(), "\""));
  }
  *response = artifacts;
  return grpc::Status::OK;
}

}  // namespace kfleet::cli

#include "cli/fake_fleet_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace kfleet::cli {

v1::SubmitJobRequest FakeFleetService::last_submit() const {
  absl::MutexLock lock(&mu_);
  return last_submit_;
}

v1::TailLogsRequest FakeFleetService::last_tail() const {
  absl::MutexLock lock(&mu_);
  return last_tail_;
}

std::vector<std::string> FakeFleetService::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

void FakeFleetService::AddEvents(const std::vector<v1::Event>& events) {
  absl::MutexLock lock(&mu_);
  events_.insert(events_.end(), events.begin(), events.end());
}

void FakeFleetService::SetMetrics(const v1::GetHostMetricsResponse& metrics) {
  absl::MutexLock lock(&mu_);
  metrics_ = metrics;
}

std::vector<v1::ListEventsRequest> FakeFleetService::events_requests() const {
  absl::MutexLock lock(&mu_);
  return events_requests_;
}

std::vector<v1::GetHostMetricsRequest> FakeFleetService::metrics_requests() const {
  absl::MutexLock lock(&mu_);
  return metrics_requests_;
}

void FakeFleetService::Record(const std::string& call) {
  absl::MutexLock lock(&mu_);
  calls_.push_back(call);
}

grpc::Status FakeFleetService::ListHosts(grpc::ServerContext*, const v1::ListHostsRequest*,
                                         v1::ListHostsResponse* response) {
  Record("ListHosts");
  if (!error.ok()) return error;
  *response = hosts;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::GetHost(grpc::ServerContext*, const v1::GetHostRequest*, v1::Host*) {
  Record("GetHost");
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not in the fake");
}

grpc::Status FakeFleetService::SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* request,
                                         v1::Job* response) {
  Record("SubmitJob");
  {
    absl::MutexLock lock(&mu_);
    last_submit_ = *request;
  }
  if (!error.ok()) return error;
  *response = job;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*,
                                        v1::ListJobsResponse* response) {
  Record("ListJobs");
  if (!error.ok()) return error;
  *response->add_jobs() = job;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                      v1::Job* response) {
  Record(absl::StrCat("GetJob ", request->id()));
  if (!error.ok()) return error;
  *response = job;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::WatchJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                                        grpc::ServerWriter<v1::Job>* writer) {
  Record(absl::StrCat("WatchJob ", request->id()));
  if (!error.ok()) return error;
  for (const v1::Job& j : watch) writer->Write(j);
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::TailLogs(grpc::ServerContext*, const v1::TailLogsRequest* request,
                                        grpc::ServerWriter<v1::LogData>* writer) {
  Record("TailLogs");
  size_t call;
  {
    absl::MutexLock lock(&mu_);
    last_tail_ = *request;
    call = tail_calls_++;
  }
  if (!error.ok()) return error;
  if (!tail_scripts.empty()) {
    const TailScript& script = tail_scripts[std::min(call, tail_scripts.size() - 1)];
    for (const v1::LogData& d : script.logs) writer->Write(d);
    return script.status;
  }
  for (const v1::LogData& d : logs) writer->Write(d);
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request,
                                         v1::Job* response) {
  Record(absl::StrCat("CancelJob ", request->id()));
  if (!error.ok()) return error;
  *response = job;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::ListEvents(grpc::ServerContext*,
                                          const v1::ListEventsRequest* request,
                                          v1::ListEventsResponse* response) {
  Record("ListEvents");
  if (!error.ok()) return error;
  absl::MutexLock lock(&mu_);
  events_requests_.push_back(*request);
  std::vector<v1::Event> matching;
  for (const v1::Event& e : events_) {
    if (!request->host().empty() && e.host_name() != request->host() &&
        e.host_id() != request->host()) {
      continue;
    }
    if (!request->kind().empty() && e.kind() != request->kind()) continue;
    if (request->after_id() > 0 && e.id() <= request->after_id()) continue;
    matching.push_back(e);
  }
  size_t limit = request->limit() == 0 ? 100 : request->limit();
  size_t skip = 0;
  if (request->after_id() > 0) {
    matching.resize(std::min(limit, matching.size()));
  } else if (matching.size() > limit) {
    skip = matching.size() - limit;
  }
  for (size_t i = skip; i < matching.size(); ++i) *response->add_events() = matching[i];
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::GetHostMetrics(grpc::ServerContext*,
                                              const v1::GetHostMetricsRequest* request,
                                              v1::GetHostMetricsResponse* response) {
  Record("GetHostMetrics");
  if (!error.ok()) return error;
  if (!metrics_error.ok()) return metrics_error;
  absl::MutexLock lock(&mu_);
  metrics_requests_.push_back(*request);
  auto wanted = [&](const v1::MetricSample& s) {
    return request->names().empty() || std::find(request->names().begin(), request->names().end(),
                                                 s.name()) != request->names().end();
  };
  for (const v1::HostMetrics& h : metrics_.hosts()) {
    if (!request->host().empty() && h.host_name() != request->host() &&
        h.host_id() != request->host()) {
      continue;
    }
    v1::HostMetrics* out = response->add_hosts();
    *out = h;
    out->clear_samples();
    out->clear_previous();
    for (const v1::MetricSample& s : h.samples()) {
      if (wanted(s)) *out->add_samples() = s;
    }
    for (const v1::MetricSample& s : h.previous()) {
      if (wanted(s)) *out->add_previous() = s;
    }
  }
  return grpc::Status::OK;
}

std::vector<v1::ExpungeFile> FakeFleetService::expunge_files() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::ExpungeFile> out;
  for (const auto& [path, file] : expunges_) out.push_back(file);
  return out;
}

std::vector<v1::ImportExpungesRequest> FakeFleetService::import_requests() const {
  absl::MutexLock lock(&mu_);
  return import_requests_;
}

std::vector<v1::ExportExpungesRequest> FakeFleetService::export_requests() const {
  absl::MutexLock lock(&mu_);
  return export_requests_;
}

grpc::Status FakeFleetService::GetResults(grpc::ServerContext*,
                                          const v1::GetResultsRequest* request,
                                          v1::GetResultsResponse* response) {
  Record(absl::StrCat("GetResults ", request->job_id()));
  if (!error.ok()) return error;
  auto it = results.find(request->job_id());
  if (it == results.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no job ", request->job_id()));
  }
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::CompareResults(grpc::ServerContext*,
                                              const v1::CompareResultsRequest* request,
                                              v1::CompareResultsResponse* response) {
  Record(absl::StrCat("CompareResults ", request->baseline_job_id(), " ", request->dev_job_id()));
  if (!error.ok()) return error;
  for (const std::string& id : {request->baseline_job_id(), request->dev_job_id()}) {
    if (results.count(id) == 0) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no job ", id));
    }
  }
  *response = comparison;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::ImportExpunges(grpc::ServerContext*,
                                              const v1::ImportExpungesRequest* request,
                                              v1::ImportExpungesResponse* response) {
  Record("ImportExpunges");
  if (!error.ok()) return error;
  absl::MutexLock lock(&mu_);
  import_requests_.push_back(*request);
  if (request->replace()) {
    for (const v1::ExpungeFile& f : request->files()) {
      for (auto it = expunges_.begin(); it != expunges_.end();) {
        bool same = it->second.kernel() == f.kernel() && it->second.fs() == f.fs();
        it = same ? expunges_.erase(it) : std::next(it);
      }
    }
  }
  for (const v1::ExpungeFile& f : request->files()) {
    expunges_[absl::StrCat(f.kernel(), "/", f.fs(), "/", f.section())] = f;
    response->set_files(response->files() + 1);
    for (char c : f.content()) response->set_tests(response->tests() + (c == '/' ? 1 : 0));
  }
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::ExportExpunges(grpc::ServerContext*,
                                              const v1::ExportExpungesRequest* request,
                                              v1::ExportExpungesResponse* response) {
  Record("ExportExpunges");
  if (!error.ok()) return error;
  absl::MutexLock lock(&mu_);
  export_requests_.push_back(*request);
  for (const auto& [path, f] : expunges_) {
    if (!request->kernel().empty() && f.kernel() != request->kernel()) continue;
    if (!request->fs().empty() && f.fs() != request->fs()) continue;
    *response->add_files() = f;
  }
  for (const v1::RemovalCandidate& c : candidates) *response->add_candidates() = c;
  return grpc::Status::OK;
}

FakeFleetServer::FakeFleetServer(FakeFleetService& service, grpc::Service* also) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&service);
  if (also != nullptr) builder.RegisterService(also);
  server_ = builder.BuildAndStart();
}

FakeFleetServer::~FakeFleetServer() { server_->Shutdown(); }

std::string FakeFleetServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

}  // namespace kfleet::cli

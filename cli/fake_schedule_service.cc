// FakeFleetService: schedules (fake_fleet_service.h).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "cli/fake_fleet_service.h"

namespace kfleet::cli {
namespace {

grpc::Status NoSchedule(const std::string& name) {
  return grpc::Status(
      grpc::StatusCode::NOT_FOUND,
      absl::StrCat("no schedule \"", name, "\": `kctl schedule ls` lists the schedules"));
}

}  // namespace

void FakeFleetService::AddScheduleRuns(const std::vector<v1::ScheduleRun>& runs) {
  absl::MutexLock lock(&mu_);
  runs_.insert(runs_.end(), runs.begin(), runs.end());
}

std::vector<v1::Schedule> FakeFleetService::schedules() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Schedule> out;
  for (const auto& [name, s] : schedules_) out.push_back(s);
  return out;
}

std::vector<v1::ListScheduleRunsRequest> FakeFleetService::runs_requests() const {
  absl::MutexLock lock(&mu_);
  return runs_requests_;
}

grpc::Status FakeFleetService::AddSchedule(grpc::ServerContext*,
                                           const v1::AddScheduleRequest* request,
                                           v1::Schedule* response) {
  Record("AddSchedule");
  if (!error.ok()) return error;
  absl::MutexLock lock(&mu_);
  v1::Schedule s = request->schedule();
  if (schedules_.count(s.name())) {
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                        absl::StrCat("schedule \"", s.name(), "\" already exists"));
  }
  for (const std::string& name : s.host_names()) {
    bool known = false;
    for (const v1::Host& h : hosts.hosts()) {
      if (h.name() != name) continue;
      known = true;
      v1::ScheduleHost* sh = s.add_hosts();
      sh->set_host_id(h.id());
      sh->set_host_name(h.name());
      sh->set_state(h.state());
    }
    if (!known) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("host_names (--host): no host \"", name, "\""));
    }
  }
  s.set_revision(++revision_);
  schedules_[s.name()] = s;
  *response = s;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::ListSchedules(grpc::ServerContext*, const v1::ListSchedulesRequest*,
                                             v1::ListSchedulesResponse* response) {
  Record("ListSchedules");
  if (!error.ok()) return error;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, s] : schedules_) *response->add_schedules() = s;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::GetSchedule(grpc::ServerContext*,
                                           const v1::GetScheduleRequest* request,
                                           v1::Schedule* response) {
  Record("GetSchedule");
  if (!error.ok()) return error;
  absl::MutexLock lock(&mu_);
  auto it = schedules_.find(request->name());
  if (it == schedules_.end()) return NoSchedule(request->name());
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::PauseSchedule(grpc::ServerContext*,
                                             const v1::PauseScheduleRequest* request,
                                             v1::Schedule* response) {
  Record(request->paused() ? "PauseSchedule" : "ResumeSchedule");
  if (!error.ok()) return error;
  absl::MutexLock lock(&mu_);
  auto it = schedules_.find(request->name());
  if (it == schedules_.end()) return NoSchedule(request->name());
  it->second.set_paused(request->paused());
  it->second.set_revision(++revision_);
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::RemoveSchedule(grpc::ServerContext*,
                                              const v1::RemoveScheduleRequest* request,
                                              v1::RemoveScheduleResponse* response) {
  Record(request->cancel() ? "RemoveSchedule cancel" : "RemoveSchedule");
  if (!error.ok()) return error;
  absl::MutexLock lock(&mu_);
  auto it = schedules_.find(request->name());
  if (it == schedules_.end()) return NoSchedule(request->name());
  *response->mutable_schedule() = it->second;
  for (v1::ScheduleRun& run : runs_) {
    if (run.schedule() != request->name() || run.outcome() != "running") continue;
    run.set_cancel_requested(request->cancel());
    *response->add_running() = run;
  }
  schedules_.erase(it);
  return grpc::Status::OK;
}

grpc::Status FakeFleetService::ListScheduleRuns(grpc::ServerContext*,
                                                const v1::ListScheduleRunsRequest* request,
                                                v1::ListScheduleRunsResponse* response) {
  Record("ListScheduleRuns");
  if (!error.ok()) return error;
  absl::MutexLock lock(&mu_);
  runs_requests_.push_back(*request);
  std::vector<v1::ScheduleRun> matching;
  bool known = schedules_.count(request->name()) > 0;
  for (const v1::ScheduleRun& r : runs_) {
    if (r.schedule() != request->name()) continue;
    known = true;
    if (!request->host().empty() && r.host_name() != request->host()) continue;
    if (r.change() <= request->after_change()) continue;
    matching.push_back(r);
  }
  if (!known) return NoSchedule(request->name());
  size_t limit = request->limit() == 0 ? 20 : request->limit();
  if (request->after_change() > 0) {
    std::sort(
        matching.begin(), matching.end(),
        [](const v1::ScheduleRun& a, const v1::ScheduleRun& b) { return a.change() < b.change(); });
    if (matching.size() > limit) matching.resize(limit);
  } else {
    std::sort(matching.begin(), matching.end(),
              [](const v1::ScheduleRun& a, const v1::ScheduleRun& b) { return a.id() < b.id(); });
    if (matching.size() > limit) matching.erase(matching.begin(), matching.end() - limit);
  }
  for (const v1::ScheduleRun& r : matching) *response->add_runs() = r;
  return grpc::Status::OK;
}

}  // namespace kfleet::cli

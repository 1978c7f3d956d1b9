// FleetService: schedules (DESIGN.md, "Schedules"). Every change is stored first, then the
// changed sets go to the connected agents the schedule applies to.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "controller/api/fleet_service.h"
#include "controller/api/schedule_validation.h"
#include "controller/store/schedule_store.h"

namespace kfleet::controller {

namespace v1 = kfleet::v1;

namespace {

constexpr int kDefaultRuns = 20;
constexpr int kMaxRuns = 1000;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace

void FleetServiceImpl::PushSchedules(const std::vector<std::string>& host_ids) {
  if (deps_.schedules != nullptr) deps_.schedules->Push(host_ids);
  deps_.feed->Publish();
}

grpc::ServerUnaryReactor* FleetServiceImpl::AddSchedule(grpc::CallbackServerContext* ctx,
                                                        const v1::AddScheduleRequest* req,
                                                        v1::Schedule* resp) {
  std::string creator = CallerName(*ctx);
  return OnExecutor(
      ctx, Permission::kOperate, "FleetService/AddSchedule", req->schedule().name(),
      [this, req, resp, creator]() -> absl::Status {
        v1::Schedule s = req->schedule();
        RETURN_IF_ERROR(ValidateSchedule(s));
        // Named hosts must be known (by name or id); the name is what is kept, so a host that
        // enrols again under the same name keeps its schedules.
        for (std::string& name : *s.mutable_host_names()) {
          absl::StatusOr<v1::Host> h = deps_.store->GetHost(name);
          if (absl::IsNotFound(h.status())) {
            return absl::NotFoundError(absl::StrCat(
                "host_names (--host): no host \"", name,
                "\": `kctl hosts` lists the hosts the controller knows (a host is known once its "
                "agent has registered)"));
          }
          if (!h.ok()) return h.status();
          name = h->name();
        }
        s.set_paused(false);
        s.set_creator(creator);
        s.clear_hosts();
        ASSIGN_OR_RETURN(*resp, deps_.store->AddSchedule(s, NowMs()));
        std::vector<std::string> ids;
        for (const v1::ScheduleHost& h : resp->hosts()) ids.push_back(h.host_id());
        PushSchedules(ids);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FleetServiceImpl::ListSchedules(grpc::CallbackServerContext* ctx,
                                                          const v1::ListSchedulesRequest*,
                                                          v1::ListSchedulesResponse* resp) {
  return OnExecutor(ctx, Permission::kRead, "FleetService/ListSchedules", "",
                    [this, resp]() -> absl::Status {
                      ASSIGN_OR_RETURN(std::vector<v1::Schedule> all, deps_.store->ListSchedules());
                      for (v1::Schedule& s : all) *resp->add_schedules() = std::move(s);
                      return absl::OkStatus();
                    });
}

grpc::ServerUnaryReactor* FleetServiceImpl::GetSchedule(grpc::CallbackServerContext* ctx,
                                                        const v1::GetScheduleRequest* req,
                                                        v1::Schedule* resp) {
  return OnExecutor(ctx, Permission::kRead, "FleetService/GetSchedule", "",
                    [this, req, resp]() -> absl::Status {
                      ASSIGN_OR_RETURN(*resp, deps_.store->GetSchedule(req->name()));
                      return absl::OkStatus();
                    });
}

grpc::ServerUnaryReactor* FleetServiceImpl::PauseSchedule(grpc::CallbackServerContext* ctx,
                                                          const v1::PauseScheduleRequest* req,
                                                          v1::Schedule* resp) {
  return OnExecutor(
      ctx, Permission::kOperate, "FleetService/PauseSchedule",
      absl::StrCat(req->name(), req->paused() ? " pause" : " resume"),
      [this, req, resp]() -> absl::Status {
        ASSIGN_OR_RETURN(*resp,
                         deps_.store->SetSchedulePaused(req->name(), req->paused(), NowMs()));
        ASSIGN_OR_RETURN(std::vector<std::string> ids, deps_.store->ScheduleHostIds(req->name()));
        PushSchedules(ids);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FleetServiceImpl::RemoveSchedule(grpc::CallbackServerContext* ctx,
                                                           const v1::RemoveScheduleRequest* req,
                                                           v1::RemoveScheduleResponse* resp) {
  return OnExecutor(
      ctx, Permission::kOperate, "FleetService/RemoveSchedule",
      absl::StrCat(req->name(), req->cancel() ? " cancel" : ""),
      [this, req, resp]() -> absl::Status {
        ASSIGN_OR_RETURN(ScheduleRemoval removed,
                         deps_.store->RemoveSchedule(req->name(), req->cancel(), NowMs()));
        // The sets first, so that an agent drops the schedule before it could start another
        // run; then the cancels (an offline host gets them on its next Hello).
        PushSchedules(removed.host_ids);
        for (const v1::ScheduleRun& run : removed.running) {
          if (!run.cancel_requested()) continue;
          v1::ControllerMessage m;
          m.mutable_cancel()->set_command_id(run.command_id());
          m.mutable_cancel()->set_reason(absl::StrCat("schedule ", req->name(), " removed"));
          deps_.fleet->Send(run.host_id(), std::move(m));
        }
        *resp->mutable_schedule() = std::move(removed.schedule);
        for (v1::ScheduleRun& run : removed.running) *resp->add_running() = std::move(run);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* FleetServiceImpl::ListScheduleRuns(grpc::CallbackServerContext* ctx,
                                                             const v1::ListScheduleRunsRequest* req,
                                                             v1::ListScheduleRunsResponse* resp) {
  return OnExecutor(
      ctx, Permission::kRead, "FleetService/ListScheduleRuns", "",
      [this, req, resp]() -> absl::Status {
        std::string host_id;
        if (!req->host().empty()) {
          ASSIGN_OR_RETURN(v1::Host h, deps_.store->GetHost(req->host()));
          host_id = h.id();
        }
        int limit = req->limit() == 0
                        ? kDefaultRuns
                        : static_cast<int>(std::min<uint32_t>(req->limit(), kMaxRuns));
        ASSIGN_OR_RETURN(
            std::vector<v1::ScheduleRun> runs,
            deps_.store->ListScheduleRuns(req->name(), host_id, limit, req->after_change()));
        for (v1::ScheduleRun& r : runs) *resp->add_runs() = std::move(r);
        return absl::OkStatus();
      });
}

}  // namespace kfleet::controller

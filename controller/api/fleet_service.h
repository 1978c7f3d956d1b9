// The admin API (FleetService) that kctl calls. Callback handlers: each unary call runs its store
// work on the executor and finishes from there; the streaming calls (WatchJob, TailLogs) are
// reactors that re-read state when the change feed moves.
#ifndef KFLEET_CONTROLLER_API_FLEET_SERVICE_H_
#define KFLEET_CONTROLLER_API_FLEET_SERVICE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/executor.h"
#include "common/grpc_status.h"
#include "controller/api/job_streams.h"
#include "controller/fleet/change_feed.h"
#include "controller/fleet/fleet.h"
#include "controller/fleet/schedule_push.h"
#include "controller/logs/log_store.h"
#include "controller/metrics/host_samples.h"
#include "controller/provision/pool_manager.h"
#include "controller/security/access_control.h"
#include "controller/store/store.h"
#include "kfleet/v1/fleet.grpc.pb.h"

namespace kfleet::controller {

// Checks a job spec: steps present and well formed, durations parse, one host selector. The error
// names the field and what was expected.
absl::Status ValidateJobSpec(const kfleet::v1::JobSpec& spec);

// Whether the host is a builder, i.e. labelled role=builder (the controller's local-builder is
// one). Kernel builds run on builders; selection `all` leaves them out.
bool IsBuilder(const kfleet::v1::Host& host);

// The ids of the hosts a selector without names or count takes at submit time: the online hosts
// carrying its labels, or, with `all`, every online host that is not a builder. None is a
// FailedPrecondition that says how to start a host or, for `all`, how to target a builder.
absl::StatusOr<std::vector<std::string>> SelectOnlineHosts(
    const std::vector<kfleet::v1::Host>& hosts, const kfleet::v1::HostSelector& sel);

class FleetServiceImpl : public kfleet::v1::FleetService::CallbackService {
 public:
  struct Deps {
    Store* store;
    LogStore* logs;
    Fleet* fleet;
    Executor* executor;
    ChangeFeed* feed;
    provision::PoolManager* pools;
    // Every host's latest samples (GetHostMetrics); null: Unavailable.
    const HostSampleTable* host_samples = nullptr;
    // Who may call what, and the audit log; null: every call is allowed (tests of the API alone).
    AccessControl* access = nullptr;
    // Sends changed schedules to connected agents; null: they get them at their next Welcome.
    SchedulePusher* schedules = nullptr;
  };
  explicit FleetServiceImpl(Deps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* ListHosts(grpc::CallbackServerContext* ctx,
                                      const kfleet::v1::ListHostsRequest* req,
                                      kfleet::v1::ListHostsResponse* resp) override;
  grpc::ServerUnaryReactor* GetHost(grpc::CallbackServerContext* ctx,
                                    const kfleet::v1::GetHostRequest* req,
                                    kfleet::v1::Host* resp) override;
  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* ctx,
                                      const kfleet::v1::SubmitJobRequest* req,
                                      kfleet::v1::Job* resp) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const kfleet::v1::ListJobsRequest* req,
                                     kfleet::v1::ListJobsResponse* resp) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx,
                                   const kfleet::v1::GetJobRequest* req,
                                   kfleet::v1::Job* resp) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const kfleet::v1::CancelJobRequest* req,
                                      kfleet::v1::Job* resp) override;
  grpc::ServerUnaryReactor* ListPools(grpc::CallbackServerContext* ctx,
                                      const kfleet::v1::ListPoolsRequest* req,
                                      kfleet::v1::ListPoolsResponse* resp) override;
  grpc::ServerUnaryReactor* Bringup(grpc::CallbackServerContext* ctx,
                                    const kfleet::v1::BringupRequest* req,
                                    kfleet::v1::BringupResponse* resp) override;
  grpc::ServerUnaryReactor* Destroy(grpc::CallbackServerContext* ctx,
                                    const kfleet::v1::DestroyRequest* req,
                                    kfleet::v1::DestroyResponse* resp) override;
  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* ctx,
                                       const kfleet::v1::ListEventsRequest* req,
                                       kfleet::v1::ListEventsResponse* resp) override;
  grpc::ServerUnaryReactor* GetHostMetrics(grpc::CallbackServerContext* ctx,
                                           const kfleet::v1::GetHostMetricsRequest* req,
                                           kfleet::v1::GetHostMetricsResponse* resp) override;
  // Tests and results (results_service.cc).
  grpc::ServerUnaryReactor* GetResults(grpc::CallbackServerContext* ctx,
                                       const kfleet::v1::GetResultsRequest* req,
                                       kfleet::v1::GetResultsResponse* resp) override;
  grpc::ServerUnaryReactor* CompareResults(grpc::CallbackServerContext* ctx,
                                           const kfleet::v1::CompareResultsRequest* req,
                                           kfleet::v1::CompareResultsResponse* resp) override;
  grpc::ServerUnaryReactor* ImportExpunges(grpc::CallbackServerContext* ctx,
                                           const kfleet::v1::ImportExpungesRequest* req,
                                           kfleet::v1::ImportExpungesResponse* resp) override;
  grpc::ServerUnaryReactor* ExportExpunges(grpc::CallbackServerContext* ctx,
                                           const kfleet::v1::ExportExpungesRequest* req,
                                           kfleet::v1::ExportExpungesResponse* resp) override;
  // Schedules (schedule_service.cc).
  grpc::ServerUnaryReactor* AddSchedule(grpc::CallbackServerContext* ctx,
                                        const kfleet::v1::AddScheduleRequest* req,
                                        kfleet::v1::Schedule* resp) override;
  grpc::ServerUnaryReactor* ListSchedules(grpc::CallbackServerContext* ctx,
                                          const kfleet::v1::ListSchedulesRequest* req,
                                          kfleet::v1::ListSchedulesResponse* resp) override;
  grpc::ServerUnaryReactor* GetSchedule(grpc::CallbackServerContext* ctx,
                                        const kfleet::v1::GetScheduleRequest* req,
                                        kfleet::v1::Schedule* resp) override;
  grpc::ServerUnaryReactor* PauseSchedule(grpc::CallbackServerContext* ctx,
                                          const kfleet::v1::PauseScheduleRequest* req,
                                          kfleet::v1::Schedule* resp) override;
  grpc::ServerUnaryReactor* RemoveSchedule(grpc::CallbackServerContext* ctx,
                                           const kfleet::v1::RemoveScheduleRequest* req,
                                           kfleet::v1::RemoveScheduleResponse* resp) override;
  grpc::ServerUnaryReactor* ListScheduleRuns(grpc::CallbackServerContext* ctx,
                                             const kfleet::v1::ListScheduleRunsRequest* req,
                                             kfleet::v1::ListScheduleRunsResponse* resp) override;
  grpc::ServerWriteReactor<kfleet::v1::Job>* WatchJob(
      grpc::CallbackServerContext* ctx, const kfleet::v1::GetJobRequest* req) override;
  grpc::ServerWriteReactor<kfleet::v1::LogData>* TailLogs(
      grpc::CallbackServerContext* ctx, const kfleet::v1::TailLogsRequest* req) override;

 private:
  // Runs `fn` (returning absl::Status) on the executor once the caller has `permission` for
  // `method`, and finishes the call with its status; calls that change something are audited
  // with `target`.
  template <typename Fn>
  grpc::ServerUnaryReactor* OnExecutor(grpc::CallbackServerContext* ctx, Permission permission,
                                       const char* method, std::string target, Fn fn);
  // OK if the caller may read (the streaming calls); else the refusal.
  absl::Status Refused(const grpc::CallbackServerContext& ctx, const char* method);
  // What the streams need, with a check that ends them once the caller's certificate is revoked.
  JobStreamDeps StreamDeps(const grpc::CallbackServerContext& ctx) const;
  // The caller's audit name, for a job's submitter.
  std::string CallerName(const grpc::CallbackServerContext& ctx) const;

  // Sends the new sets of `host_ids` (schedule_service.cc).
  void PushSchedules(const std::vector<std::string>& host_ids);

  absl::StatusOr<kfleet::v1::Job> Submit(const kfleet::v1::JobSpec& spec,
                                         const std::string& submitter);
  // An online host labelled role=builder, an idle one if there is one.
  absl::StatusOr<std::string> PickBuilder();

  Deps deps_;
};

template <typename Fn>
grpc::ServerUnaryReactor* FleetServiceImpl::OnExecutor(grpc::CallbackServerContext* ctx,
                                                       Permission permission, const char* method,
                                                       std::string target, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  Identity who;
  if (deps_.access != nullptr) {
    absl::StatusOr<Identity> w = deps_.access->Authorize(*ctx, permission, method, target);
    if (!w.ok()) {
      reactor->Finish(ToGrpcStatus(w.status()));
      return reactor;
    }
    who = *std::move(w);
  }
  AccessControl* audit = permission == Permission::kOperate || permission == Permission::kAdmin
                             ? deps_.access
                             : nullptr;
  deps_.executor->Post([reactor, audit, method, target = std::move(target), who = std::move(who),
                        fn = std::move(fn)]() mutable {
    absl::Status s = fn();
    if (audit != nullptr) audit->Audit(who, method, target, s);
    reactor->Finish(ToGrpcStatus(s));
  });
  return reactor;
}

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_API_FLEET_SERVICE_H_

// A FleetService for tests: answers from canned data, records what it was asked, and serves on a
// loopback port chosen by the OS.
#ifndef KFLEET_CLI_FAKE_FLEET_SERVICE_H_
#define KFLEET_CLI_FAKE_FLEET_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "kfleet/v1/fleet.grpc.pb.h"

namespace kfleet::cli {

class FakeFleetService : public v1::FleetService::Service {
 public:
  // Canned answers. Set before the first call; not changed while calls run.
  v1::ListHostsResponse hosts;
  v1::Job job;                    // SubmitJob, GetJob, CancelJob answer this
  std::vector<v1::LogData> logs;  // TailLogs sends these, in order
  // When not empty, the n-th TailLogs call sends the n-th script's logs and ends with its status
  // (the last script again once they run out): a controller that goes away mid-stream.
  struct TailScript {
    std::vector<v1::LogData> logs;
    grpc::Status status;
  };
  std::vector<TailScript> tail_scripts;
  std::vector<v1::Job> watch;  // WatchJob sends these, in order
  // GetResults answers results[job_id] (NOT_FOUND for another id); CompareResults answers
  // `comparison` when both jobs are in `results`.
  std::map<std::string, v1::GetResultsResponse> results;
  v1::CompareResultsResponse comparison;
  std::vector<v1::RemovalCandidate> candidates;   // ExportExpunges adds these
  grpc::Status error = grpc::Status::OK;          // when not OK, every call fails with it
  grpc::Status metrics_error = grpc::Status::OK;  // when not OK, GetHostMetrics fails with it

  // Events ListEvents answers from, as the controller does: those of a host (by name or id) and
  // of a kind, the newest `limit` (0: 100), or with after_id the oldest `limit` with a larger id;
  // oldest first. May be called while calls run (from a test's sleep, say).
  void AddEvents(const std::vector<v1::Event>& events);
  // What GetHostMetrics answers, less the hosts and sample names not asked for. May be called
  // while calls run.
  void SetMetrics(const v1::GetHostMetricsResponse& metrics);

  // Schedules, kept as a controller keeps them: AddSchedule stores one (ALREADY_EXISTS for a
  // name in use, NOT_FOUND for a host name not in `hosts`), and the others answer from what is
  // stored. ListScheduleRuns answers from AddScheduleRuns' runs of the name, as the controller
  // does with limit and after_change. May be called while calls run.
  void AddScheduleRuns(const std::vector<v1::ScheduleRun>& runs);
  std::vector<v1::Schedule> schedules() const;
  std::vector<v1::ListScheduleRunsRequest> runs_requests() const;

  // What was asked.
  v1::SubmitJobRequest last_submit() const;
  std::vector<v1::ListEventsRequest> events_requests() const;
  std::vector<v1::GetHostMetricsRequest> metrics_requests() const;
  v1::TailLogsRequest last_tail() const;
  std::vector<std::string> calls() const;
  // The expunge files ImportExpunges stored, as a controller keeps them: by kernel, fs and
  // section, the content as sent. ExportExpunges answers those of the kernel and fs asked for
  // (all when empty), in path order.
  std::vector<v1::ExpungeFile> expunge_files() const;
  std::vector<v1::ImportExpungesRequest> import_requests() const;
  std::vector<v1::ExportExpungesRequest> export_requests() const;

  grpc::Status ListHosts(grpc::ServerContext*, const v1::ListHostsRequest*,
                         v1::ListHostsResponse* response) override;
  grpc::Status GetHost(grpc::ServerContext*, const v1::GetHostRequest*, v1::Host*) override;
  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* request,
                         v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*,
                        v1::ListJobsResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                      v1::Job* response) override;
  grpc::Status WatchJob(grpc::ServerContext*, const v1::GetJobRequest* request,
                        grpc::ServerWriter<v1::Job>* writer) override;
  grpc::Status TailLogs(grpc::ServerContext*, const v1::TailLogsRequest* request,
                        grpc::ServerWriter<v1::LogData>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request,
                         v1::Job* response) override;
  grpc::Status ListEvents(grpc::ServerContext*, const v1::ListEventsRequest* request,
                          v1::ListEventsResponse* response) override;
  grpc::Status GetHostMetrics(grpc::ServerContext*, const v1::GetHostMetricsRequest* request,
                              v1::GetHostMetricsResponse* response) override;
  grpc::Status GetResults(grpc::ServerContext*, const v1::GetResultsRequest* request,
                          v1::GetResultsResponse* response) override;
  grpc::Status CompareResults(grpc::ServerContext*, const v1::CompareResultsRequest* request,
                              v1::CompareResultsResponse* response) override;
  grpc::Status ImportExpunges(grpc::ServerContext*, const v1::ImportExpungesRequest* request,
                              v1::ImportExpungesResponse* response) override;
  grpc::Status ExportExpunges(grpc::ServerContext*, const v1::ExportExpungesRequest* request,
                              v1::ExportExpungesResponse* response) override;
  grpc::Status AddSchedule(grpc::ServerContext*, const v1::AddScheduleRequest* request,
                           v1::Schedule* response) override;
  grpc::Status ListSchedules(grpc::ServerContext*, const v1::ListSchedulesRequest* request,
                             v1::ListSchedulesResponse* response) override;
  grpc::Status GetSchedule(grpc::ServerContext*, const v1::GetScheduleRequest* request,
                           v1::Schedule* response) override;
  grpc::Status PauseSchedule(grpc::ServerContext*, const v1::PauseScheduleRequest* request,
                             v1::Schedule* response) override;
  grpc::Status RemoveSchedule(grpc::ServerContext*, const v1::RemoveScheduleRequest* request,
                              v1::RemoveScheduleResponse* response) override;
  grpc::Status ListScheduleRuns(grpc::ServerContext*, const v1::ListScheduleRunsRequest* request,
                                v1::ListScheduleRunsResponse* response) override;

 private:
  void Record(const std::string& call);

  mutable absl::Mutex mu_;
  v1::SubmitJobRequest last_submit_ ABSL_GUARDED_BY(mu_);
  v1::TailLogsRequest last_tail_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  size_t tail_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ListEventsRequest> events_requests_ ABSL_GUARDED_BY(mu_);
  v1::GetHostMetricsResponse metrics_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::GetHostMetricsRequest> metrics_requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::ExpungeFile> expunges_ ABSL_GUARDED_BY(mu_);  // by path
  std::vector<v1::ImportExpungesRequest> import_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ExportExpungesRequest> export_requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::Schedule> schedules_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ScheduleRun> runs_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ListScheduleRunsRequest> runs_requests_ ABSL_GUARDED_BY(mu_);
  uint64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
};

// Serves `service` (and `also`, when given, e.g. a FakeArtifactService) on 127.0.0.1 at a free
// port until destroyed.
class FakeFleetServer {
 public:
  explicit FakeFleetServer(FakeFleetService& service, grpc::Service* also = nullptr);
  ~FakeFleetServer();

  // "127.0.0.1:PORT".
  std::string address() const;

 private:
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_FAKE_FLEET_SERVICE_H_

// kctl's side of FleetService (and of ArtifactService and AccessService, on the same channel):
// every unary call with a deadline, streams without one, and gRPC errors turned into the messages
// and exit codes kctl reports.
#ifndef KFLEET_CLI_FLEET_CLIENT_H_
#define KFLEET_CLI_FLEET_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cli/access_client.h"
#include "kfleet/v1/artifacts.grpc.pb.h"
#include "kfleet/v1/fleet.grpc.pb.h"

namespace kfleet::cli {

inline constexpr absl::Duration kDefaultRpcTimeout = absl::Seconds(10);

// The error kctl reports for a failed call of `method` to the controller at `address`, the one
// place that maps the controller's statuses to messages and exit codes: UNAVAILABLE and
// DEADLINE_EXCEEDED say the controller cannot be reached and how to point kctl elsewhere, or, when
// gRPC's message tells of a failed TLS handshake or of a connection the controller closed, what
// to check in the config file (exit 3);
// UNAUTHENTICATED and PERMISSION_DENIED say the controller refused kctl's identity or its role
// (exit 9); NOT_FOUND exits 8; INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS and
// RESOURCE_EXHAUSTED 2; anything else 3.
absl::Status RpcError(absl::string_view method, const grpc::Status& status,
                      absl::string_view address);

// Not thread-safe: kctl makes one call at a time.
class FleetClient {
 public:
  // `address` is only used in error messages and kept for commands that write it out (as does
  // `server_name`, the TLS name the connection checked, "" for the address's host).
  FleetClient(std::shared_ptr<grpc::Channel> channel, std::string address,
              absl::Duration rpc_timeout = kDefaultRpcTimeout, std::string server_name = "");

  absl::StatusOr<v1::ListHostsResponse> ListHosts();
  absl::StatusOr<v1::Job> SubmitJob(const v1::JobSpec& spec);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(uint32_t limit);
  absl::StatusOr<v1::Job> GetJob(const std::string& id);
  absl::StatusOr<v1::Job> CancelJob(const std::string& id);
  absl::StatusOr<v1::ListPoolsResponse> ListPools();
  absl::StatusOr<v1::BringupResponse> Bringup(const std::string& pool, uint32_t count);
  // Waits up to 10 minutes: destroying guests takes a while.
  absl::StatusOr<v1::DestroyResponse> Destroy(const std::string& name);
  absl::StatusOr<v1::ListEventsResponse> ListEvents(const v1::ListEventsRequest& request);
  absl::StatusOr<v1::GetHostMetricsResponse> GetHostMetrics(
      const v1::GetHostMetricsRequest& request);
  absl::StatusOr<v1::GetResultsResponse> GetResults(const std::string& job_id);
  absl::StatusOr<v1::CompareResultsResponse> CompareResults(const std::string& baseline_job_id,
                                                            const std::string& dev_job_id);
  absl::StatusOr<v1::ImportExpungesResponse> ImportExpunges(
      const v1::ImportExpungesRequest& request);
  absl::StatusOr<v1::ExportExpungesResponse> ExportExpunges(
      const v1::ExportExpungesRequest& request);

  // Schedules.
  absl::StatusOr<v1::Schedule> AddSchedule(const v1::Schedule& schedule);
  absl::StatusOr<v1::ListSchedulesResponse> ListSchedules();
  absl::StatusOr<v1::Schedule> GetSchedule(const std::string& name);
  absl::StatusOr<v1::Schedule> PauseSchedule(const std::string& name, bool paused);
  absl::StatusOr<v1::RemoveScheduleResponse> RemoveSchedule(const std::string& name, bool cancel);
  absl::StatusOr<v1::ListScheduleRunsResponse> ListScheduleRuns(
      const v1::ListScheduleRunsRequest& request);

  // Calls `on_data` for each message until the stream ends. An error from `on_data` cancels the
  // call and is returned as is.
  absl::Status TailLogs(const v1::TailLogsRequest& request,
                        absl::FunctionRef<absl::Status(const v1::LogData&)> on_data);
  absl::Status WatchJob(const std::string& id,
                        absl::FunctionRef<absl::Status(const v1::Job&)> on_job);

  absl::StatusOr<v1::ListArtifactsResponse> ListArtifacts(const v1::ListArtifactsRequest& request);
  // Downloads blob `sha256` to `path` with common/artifact_client.h's DownloadFile: resumes from
  // `path`.part, verifies sha256 and size before renaming into place. `progress` (optional) is
  // called with the bytes done and the blob's size.
  absl::Status DownloadArtifact(const std::string& sha256, const std::string& path,
                                std::function<void(uint64_t done, uint64_t total)> progress);

  // AccessService on the same channel.
  AccessClient& access() { return access_; }

  const std::string& address() const { return address_; }
  const std::string& server_name() const { return server_name_; }

 private:
  void SetDeadline(grpc::ClientContext& context) const;

  std::unique_ptr<v1::FleetService::Stub> stub_;
  std::unique_ptr<v1::ArtifactService::Stub> artifacts_;
  AccessClient access_;
  std::string address_;
  std::string server_name_;
  absl::Duration rpc_timeout_;
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_FLEET_CLIENT_H_

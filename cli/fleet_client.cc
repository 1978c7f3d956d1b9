#include "cli/fleet_client.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "common/artifact_client.h"
#include "common/grpc_status.h"

namespace kfleet::cli {
namespace {

// Reads a server stream to its end, handing each message to `on_message`.
template <typename T, typename F>
absl::Status Drain(absl::string_view method, grpc::ClientContext& context,
                   grpc::ClientReader<T>& reader, const std::string& address, F on_message) {
  T message;
  while (reader.Read(&message)) {
    absl::Status s = on_message(message);
    if (!s.ok()) {
      context.TryCancel();
      (void)reader.Finish();  // CANCELLED by us: not worth reporting
      return s;
    }
  }
  grpc::Status status = reader.Finish();
  if (!status.ok()) return RpcError(method, status, address);
  return absl::OkStatus();
}

// gRPC reports a failed TLS handshake as UNAVAILABLE, with OpenSSL's words in the message: "Ssl
// handshake failed: SSL_ERROR_SSL: ... certificate verify failed", "tlsv1 alert unknown ca", ...
bool IsTlsFailure(absl::string_view message) {
  std::string m = absl::AsciiStrToLower(message);
  for (absl::string_view word : {"handshake", "ssl", "certificate", "tlsv1"}) {
    if (absl::StrContains(m, word)) return true;
  }
  return false;
}

// A controller that refuses a client certificate once the TLS 1.3 handshake is done (revoked,
// expired), or that speaks TLS to a plaintext kctl, closes the connection without a word.
bool IsClosedByPeer(absl::string_view message) {
  return absl::StrContains(absl::AsciiStrToLower(message), "socket closed");
}

}  // namespace

absl::Status RpcError(absl::string_view method, const grpc::Status& status,
                      absl::string_view address) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return absl::OkStatus();
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (IsTlsFailure(status.error_message())) {
        return WithExitCode(
            absl::UnavailableError(absl::StrCat(
                "cannot reach the controller at ", address, " (", status.error_message(),
                "): the TLS handshake failed: the controller refused this certificate (revoked, "
                "expired, or from another CA), or its certificate is not signed by the CA in the "
                "config; check `ca:`/`cert:`/`key:` in the config file, or ask an admin for a "
                "new one (kctl user create)")),
            kExitUnreachable);
      }
      if (IsClosedByPeer(status.error_message())) {
        return WithExitCode(
            absl::UnavailableError(absl::StrCat(
                "cannot reach the controller at ", address, " (", status.error_message(),
                "): the controller closed the connection: it may have refused this certificate "
                "(revoked or expired; an admin makes a new one with kctl user create), or it "
                "speaks TLS and kctl plaintext (--insecure), or it was stopping")),
            kExitUnreachable);
      }
      return WithExitCode(
          absl::UnavailableError(
              absl::StrCat("cannot reach the controller at ", address, " (", status.error_message(),
                           "): start it, or point kctl elsewhere with --controller HOST:PORT or "
                           "KFLEET_CONTROLLER")),
          kExitUnreachable);
    case grpc::StatusCode::UNAUTHENTICATED:
      return WithExitCode(
          absl::UnauthenticatedError(absl::StrCat(
              method, ": the controller at ", address, " did not accept kctl's identity (",
              status.error_message(),
              "): kctl needs a certificate of the controller's CA, `cert:` and `key:` in the "
              "config file; an admin makes one with kctl user create")),
          kExitDenied);
    case grpc::StatusCode::PERMISSION_DENIED:
      return WithExitCode(
          absl::PermissionDeniedError(absl::StrCat(
              method, ": refused by the controller at ", address, " (", status.error_message(),
              "): the role of this certificate does not allow it; kctl whoami shows who the "
              "controller takes kctl for")),
          kExitDenied);
    case grpc::StatusCode::NOT_FOUND:
      return WithExitCode(absl::NotFoundError(absl::StrCat(method, ": ", status.error_message())),
                          kExitNotFound);
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return WithExitCode(absl::Status(ToAbslStatus(status).code(),
                                       absl::StrCat(method, ": ", status.error_message())),
                          kExitUsage);
    default: {
      absl::Status s = ToAbslStatus(status);
      return WithExitCode(absl::Status(s.code(), absl::StrCat(method, ": ", s.message())),
                          kExitUnreachable);
    }
  }
}

FleetClient::FleetClient(std::shared_ptr<grpc::Channel> channel, std::string address,
                         absl::Duration rpc_timeout, std::string server_name)
    : stub_(v1::FleetService::NewStub(channel)),
      artifacts_(v1::ArtifactService::NewStub(channel)),
      access_(channel, address, rpc_timeout),
      address_(std::move(address)),
      server_name_(std::move(server_name)),
      rpc_timeout_(rpc_timeout) {}

void FleetClient::SetDeadline(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_));
}

absl::StatusOr<v1::ListHostsResponse> FleetClient::ListHosts() {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListHostsResponse response;
  grpc::Status s = stub_->ListHosts(&context, v1::ListHostsRequest(), &response);
  if (!s.ok()) return RpcError("ListHosts", s, address_);
  return response;
}

absl::StatusOr<v1::ListPoolsResponse> FleetClient::ListPools() {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListPoolsResponse response;
  grpc::Status s = stub_->ListPools(&context, v1::ListPoolsRequest(), &response);
  if (!s.ok()) return RpcError("ListPools", s, address_);
  return response;
}

absl::StatusOr<v1::BringupResponse> FleetClient::Bringup(const std::string& pool, uint32_t count) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::BringupRequest request;
  request.set_pool(pool);
  request.set_count(count);
  v1::BringupResponse response;
  grpc::Status s = stub_->Bringup(&context, request, &response);
  if (!s.ok()) return RpcError("Bringup", s, address_);
  return response;
}

absl::StatusOr<v1::DestroyResponse> FleetClient::Destroy(const std::string& name) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(10)));
  v1::DestroyRequest request;
  request.set_name(name);
  v1::DestroyResponse response;
  grpc::Status s = stub_->Destroy(&context, request, &response);
  if (!s.ok()) return RpcError("Destroy", s, address_);
  return response;
}

absl::StatusOr<v1::ListEventsResponse> FleetClient::ListEvents(
    const v1::ListEventsRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListEventsResponse response;
  grpc::Status s = stub_->ListEvents(&context, request, &response);
  if (!s.ok()) return RpcError("ListEvents", s, address_);
  return response;
}

absl::StatusOr<v1::Schedule> FleetClient::AddSchedule(const v1::Schedule& schedule) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::AddScheduleRequest request;
  *request.mutable_schedule() = schedule;
  v1::Schedule response;
  grpc::Status s = stub_->AddSchedule(&context, request, &response);
  if (!s.ok()) return RpcError("AddSchedule", s, address_);
  return response;
}

absl::StatusOr<v1::ListSchedulesResponse> FleetClient::ListSchedules() {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListSchedulesResponse response;
  grpc::Status s = stub_->ListSchedules(&context, v1::ListSchedulesRequest(), &response);
  if (!s.ok()) return RpcError("ListSchedules", s, address_);
  return response;
}

absl::StatusOr<v1::Schedule> FleetClient::GetSchedule(const std::string& name) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::GetScheduleRequest request;
  request.set_name(name);
  v1::Schedule response;
  grpc::Status s = stub_->GetSchedule(&context, request, &response);
  if (!s.ok()) return RpcError("GetSchedule", s, address_);
  return response;
}

absl::StatusOr<v1::Schedule> FleetClient::PauseSchedule(const std::string& name, bool paused) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::PauseScheduleRequest request;
  request.set_name(name);
  request.set_paused(paused);
  v1::Schedule response;
  grpc::Status s = stub_->PauseSchedule(&context, request, &response);
  if (!s.ok()) return RpcError("PauseSchedule", s, address_);
  return response;
}

absl::StatusOr<v1::RemoveScheduleResponse> FleetClient::RemoveSchedule(const std::string& name,
                                                                       bool cancel) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::RemoveScheduleRequest request;
  request.set_name(name);
  request.set_cancel(cancel);
  v1::RemoveScheduleResponse response;
  grpc::Status s = stub_->RemoveSchedule(&context, request, &response);
  if (!s.ok()) return RpcError("RemoveSchedule", s, address_);
  return response;
}

absl::StatusOr<v1::ListScheduleRunsResponse> FleetClient::ListScheduleRuns(
    const v1::ListScheduleRunsRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListScheduleRunsResponse response;
  grpc::Status s = stub_->ListScheduleRuns(&context, request, &response);
  if (!s.ok()) return RpcError("ListScheduleRuns", s, address_);
  return response;
}

absl::StatusOr<v1::GetHostMetricsResponse> FleetClient::GetHostMetrics(
    const v1::GetHostMetricsRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::GetHostMetricsResponse response;
  grpc::Status s = stub_->GetHostMetrics(&context, request, &response);
  if (!s.ok()) return RpcError("GetHostMetrics", s, address_);
  return response;
}

absl::StatusOr<v1::GetResultsResponse> FleetClient::GetResults(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::GetResultsRequest request;
  request.set_job_id(job_id);
  v1::GetResultsResponse response;
  grpc::Status s = stub_->GetResults(&context, request, &response);
  if (!s.ok()) return RpcError("GetResults", s, address_);
  return response;
}

absl::StatusOr<v1::CompareResultsResponse> FleetClient::CompareResults(
    const std::string& baseline_job_id, const std::string& dev_job_id) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::CompareResultsRequest request;
  request.set_baseline_job_id(baseline_job_id);
  request.set_dev_job_id(dev_job_id);
  v1::CompareResultsResponse response;
  grpc::Status s = stub_->CompareResults(&context, request, &response);
  if (!s.ok()) return RpcError("CompareResults", s, address_);
  return response;
}

absl::StatusOr<v1::ImportExpungesResponse> FleetClient::ImportExpunges(
    const v1::ImportExpungesRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ImportExpungesResponse response;
  grpc::Status s = stub_->ImportExpunges(&context, request, &response);
  if (!s.ok()) return RpcError("ImportExpunges", s, address_);
  return response;
}

absl::StatusOr<v1::ExportExpungesResponse> FleetClient::ExportExpunges(
    const v1::ExportExpungesRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ExportExpungesResponse response;
  grpc::Status s = stub_->ExportExpunges(&context, request, &response);
  if (!s.ok()) return RpcError("ExportExpunges", s, address_);
  return response;
}

absl::StatusOr<v1::Job> FleetClient::SubmitJob(const v1::JobSpec& spec) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::SubmitJobRequest request;
  *request.mutable_spec() = spec;
  v1::Job job;
  grpc::Status s = stub_->SubmitJob(&context, request, &job);
  if (!s.ok()) return RpcError("SubmitJob", s, address_);
  return job;
}

absl::StatusOr<v1::ListJobsResponse> FleetClient::ListJobs(uint32_t limit) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListJobsRequest request;
  request.set_limit(limit);
  v1::ListJobsResponse response;
  grpc::Status s = stub_->ListJobs(&context, request, &response);
  if (!s.ok()) return RpcError("ListJobs", s, address_);
  return response;
}

absl::StatusOr<v1::Job> FleetClient::GetJob(const std::string& id) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::GetJobRequest request;
  request.set_id(id);
  v1::Job job;
  grpc::Status s = stub_->GetJob(&context, request, &job);
  if (!s.ok()) return RpcError("GetJob", s, address_);
  return job;
}

absl::StatusOr<v1::Job> FleetClient::CancelJob(const std::string& id) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::CancelJobRequest request;
  request.set_id(id);
  v1::Job job;
  grpc::Status s = stub_->CancelJob(&context, request, &job);
  if (!s.ok()) return RpcError("CancelJob", s, address_);
  return job;
}

absl::StatusOr<v1::ListArtifactsResponse> FleetClient::ListArtifacts(
    const v1::ListArtifactsRequest& request) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListArtifactsResponse response;
  grpc::Status s = artifacts_->ListArtifacts(&context, request, &response);
  if (!s.ok()) return RpcError("ListArtifacts", s, address_);
  return response;
}

absl::Status FleetClient::DownloadArtifact(
    const std::string& sha256, const std::string& path,
    std::function<void(uint64_t done, uint64_t total)> progress) {
  TransferOptions options;
  options.rpc_timeout = rpc_timeout_;
  options.progress = std::move(progress);
  absl::Status s = DownloadFile(*artifacts_, sha256, path, options);
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kFailedPrecondition:
      // The controller, or the transfer from it, failed (after the client's own retries).
      return WithExitCode(s, kExitUnreachable);
    case absl::StatusCode::kUnauthenticated:
      return WithExitCode(s, kExitDenied);
    default:
      return s;  // OK; NOT_FOUND exits 8; local file errors 2
  }
}

// Streams have no deadline (a follow may last hours), and fail fast rather than wait for a
// controller that is not there (wait_for_ready false, the default, set here to say so).
absl::Status FleetClient::TailLogs(const v1::TailLogsRequest& request,
                                   absl::FunctionRef<absl::Status(const v1::LogData&)> on_data) {
  grpc::ClientContext context;
  context.set_wait_for_ready(false);
  std::unique_ptr<grpc::ClientReader<v1::LogData>> reader = stub_->TailLogs(&context, request);
  return Drain("TailLogs", context, *reader, address_, on_data);
}

absl::Status FleetClient::WatchJob(const std::string& id,
                                   absl::FunctionRef<absl::Status(const v1::Job&)> on_job) {
  grpc::ClientContext context;
  context.set_wait_for_ready(false);
  v1::GetJobRequest request;
  request.set_id(id);
  std::unique_ptr<grpc::ClientReader<v1::Job>> reader = stub_->WatchJob(&context, request);
  return Drain("WatchJob", context, *reader, address_, on_job);
}

}  // namespace kfleet::cli

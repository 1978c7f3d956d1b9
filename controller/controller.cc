#include "controller/controller.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/executor.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "controller/api/fleet_service.h"
#include "controller/fleet/agent_service.h"
#include "controller/fleet/change_feed.h"
#include "controller/fleet/fleet.h"
#include "controller/logs/log_store.h"
#include "controller/store/sqlite_store.h"

namespace kfleet::controller {

// Destroyed in reverse order of declaration: first the server (no new events), then the executor,
// which runs the work already due while everything that work uses still exists.
struct Controller::Impl {
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<LogStore> logs;
  std::unique_ptr<ChangeFeed> feed;
  std::unique_ptr<Fleet> fleet;
  std::unique_ptr<AgentServiceImpl> agent_service;
  std::unique_ptr<FleetServiceImpl> fleet_service;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

Controller::Controller(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Controller>> Controller::Start(const ControllerOptions& options) {
  if (options.state_dir.empty()) {
    return absl::InvalidArgumentError("--state-dir is required: a directory for kfleet.db and logs");
  }
  ASSIGN_OR_RETURN(auto creds, MakeServerCredentials(options.security, options.listen));
  auto impl = std::make_unique<Impl>();
  RETURN_IF_ERROR(MakeDirs(options.state_dir + "/logs"));
  ASSIGN_OR_RETURN(impl->store, SqliteStore::Open(options.state_dir + "/kfleet.db"));
  RETURN_IF_ERROR(impl->store->MarkAllOffline());
  impl->logs = std::make_unique<LogStore>(options.state_dir + "/logs");
  impl->executor = std::make_unique<Executor>(options.executor_threads);
  impl->feed = std::make_unique<ChangeFeed>(impl->executor.get());
  impl->fleet = std::make_unique<Fleet>(
      impl->store.get(), impl->feed.get(),
      LivenessSettings{options.heartbeat, options.offline_after_missed});
  impl->agent_service = std::make_unique<AgentServiceImpl>(SessionDeps{
      impl->store.get(), impl->logs.get(), impl->fleet.get(), impl->executor.get(),
      impl->feed.get()});
  impl->fleet_service = std::make_unique<FleetServiceImpl>(FleetServiceImpl::Deps{
      impl->store.get(), impl->logs.get(), impl->fleet.get(), impl->executor.get(),
      impl->feed.get()});

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, &impl->port);
  builder.RegisterService(impl->agent_service.get());
  builder.RegisterService(impl->fleet_service.get());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kKeepaliveMinServerPingIntervalMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        ": the address is in use or not local; pick another with --listen HOST:PORT"));
  }
  impl->fleet->Start();
  LogInfo(absl::StrCat("kfleet-controller listening on ", options.listen.substr(
                                                              0, options.listen.rfind(':')),
                       ":", impl->port, ", state in ", options.state_dir));
  return std::unique_ptr<Controller>(new Controller(std::move(impl)));
}

Controller::~Controller() { Shutdown(); }

int Controller::port() const { return impl_->port; }

void Controller::Wait() { impl_->server->Wait(); }

void Controller::Shutdown() {
  {
    absl::MutexLock lock(&impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  impl_->fleet->Stop();
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace kfleet::controller

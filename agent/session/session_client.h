// The agent's half of the session protocol: connects, says Hello, and then for as long as the
// stream lives sends outbox records and heartbeats (writer thread) while handing commands, cancels
// and acks to their owners (reader thread). Reconnects with capped exponential backoff and jitter.
#ifndef KFLEET_AGENT_SESSION_SESSION_CLIENT_H_
#define KFLEET_AGENT_SESSION_SESSION_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/commands/command_manager.h"
#include "agent/outbox/outbox.h"
#include "common/credentials.h"
#include "kfleet/v1/agent.grpc.pb.h"

namespace kfleet::agent {

struct SessionOptions {
  std::string controller;  // HOST:PORT
  TransportSecurity security;
  std::string host_id;
  std::string name;
  std::map<std::string, std::string> labels;
  std::string agent_version;
  absl::Duration reconnect_min = absl::Milliseconds(500);
  absl::Duration reconnect_max = absl::Seconds(30);
  size_t max_batch_bytes = 1 << 20;
  // Where this agent serves its own /metrics (Hello.metrics_address); empty: nowhere.
  std::string metrics_address;
  // Called with each Welcome's settings (metrics interval...), on the session thread.
  std::function<void(const kfleet::v1::SessionSettings&)> on_settings;
  // Called with the host's schedules, on the session thread: from each Welcome that carries them
  // (a controller of protocol 1.0 sends none: the agent's schedules stay as they are), and from
  // each ControllerMessage.schedules.
  std::function<void(const kfleet::v1::ScheduleSet&)> on_schedules;
};

// The n-th (from 0) delay before reconnecting: min * 2^n capped at max, then drawn uniformly from
// [delay/2, delay] so that a fleet restarting together does not reconnect in lockstep.
absl::Duration ReconnectDelay(int attempt, absl::Duration min, absl::Duration max,
                              double unit_random);

class SessionClient {
 public:
  // `outbox` and `commands` must outlive this object.
  SessionClient(SessionOptions options, Outbox* outbox, CommandManager* commands);
  ~SessionClient();  // Stop()s

  // Starts the connect loop on its own thread.
  absl::Status Start();
  // Ends the current session and the loop. Thread-safe, idempotent.
  void Stop();

  // True while a session is established (Welcome received). For status output and tests.
  bool connected() const;

  // Sends `batch` on the current session soon (within the writer's 200 ms wait); a batch not
  // sent yet is replaced by a newer one, and none is kept across sessions. Thread-safe.
  void SendMetrics(kfleet::v1::MetricsBatch batch);

 private:
  void Loop();
  // One session, from connect to its end; returns why it ended.
  grpc::Status RunSession();
  void WriterLoop(
      grpc::ClientReaderWriter<kfleet::v1::AgentMessage, kfleet::v1::ControllerMessage>* stream,
      absl::Duration heartbeat, bool* session_over);

  const SessionOptions options_;
  Outbox* outbox_;
  CommandManager* commands_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<kfleet::v1::AgentService::Stub> stub_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::optional<kfleet::v1::MetricsBatch> metrics_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SESSION_SESSION_CLIENT_H_

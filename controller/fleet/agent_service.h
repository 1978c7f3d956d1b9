// The agent side of the controller: AgentService.Session, one callback reactor per connected
// agent (no thread per stream). Reactions never block: every message is handled on the executor
// (SQLite, log fsyncs), and the next read starts only when the last message is durable, so gRPC
// flow control slows an agent that sends faster than the controller can store.
#ifndef KFLEET_CONTROLLER_FLEET_AGENT_SERVICE_H_
#define KFLEET_CONTROLLER_FLEET_AGENT_SERVICE_H_

#include <functional>
#include <string>
#include <vector>

#include "common/executor.h"
#include "controller/fleet/change_feed.h"
#include "controller/fleet/fleet.h"
#include "controller/fleet/schedule_push.h"
#include "controller/logs/log_store.h"
#include "controller/security/access_control.h"
#include "controller/security/access_store.h"
#include "controller/store/store.h"
#include "kfleet/v1/agent.grpc.pb.h"

namespace kfleet::controller {

inline constexpr uint32_t kProtocolMajor = 1;
// 1.1: schedules (Welcome.schedules, ControllerMessage.schedules, ScheduleRunStarted items).
inline constexpr uint32_t kProtocolMinor = 1;

// Limits on what one agent message may carry; past them the controller answers with a
// ProtocolError (or ends the session) and keeps serving everyone else.
inline constexpr size_t kMaxLogChunkBytes = 1 << 20;
inline constexpr int kMaxItemsPerMessage = 4096;
inline constexpr int kMaxLabels = 64;

// What sessions report for the controller's metrics (controller/metrics/). Called on executor
// threads, concurrently for different sessions; must not block.
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  // A host's latest samples (validated by the observer).
  virtual void OnMetrics(const kfleet::v1::Host& host, const kfleet::v1::MetricsBatch& batch) = 0;
  // A kernel event of the host was stored as news (each record once; history is not).
  virtual void OnEvent(const kfleet::v1::Event& event) = 0;
  // A kernel event that OnEvent saw on another host moved to this one, whose agent named the
  // command it hit (KernelEventClash): counted for the fleet already, not yet for this host.
  virtual void OnEventMoved(const kfleet::v1::Event& event) { (void)event; }
  // Test results stored (each once: a resent one is not here again).
  virtual void OnTestResults(const std::vector<StoredTestResult>& results) { (void)results; }
  // Log bytes made durable, and sequenced items that were already stored (resent by an agent).
  virtual void OnLogBytes(uint64_t bytes) = 0;
  virtual void OnReplayedItems(int items) = 0;
  // A host said Hello (registered or came back).
  virtual void OnHello(const kfleet::v1::Host& host) = 0;
  // A command was accepted by its agent this long after it was created.
  virtual void OnDispatchLatency(absl::Duration latency) = 0;
};

// Everything a session needs; all pointers outlive the service.
struct SessionDeps {
  Store* store;
  LogStore* logs;
  Fleet* fleet;
  Executor* executor;
  ChangeFeed* feed;
  // Records a kernel build reported by a command (artifact_index.h); null: builds are not
  // recorded.
  std::function<absl::Status(const kfleet::v1::KernelBuild&, const std::string& command_id)>
      record_build;
  SessionObserver* observer = nullptr;  // null: nothing observed
  // How often agents sample and send their metrics (SessionSettings.metrics_interval_ms);
  // zero: never.
  absl::Duration metrics_interval = absl::Seconds(15);
  // Who may open a session (an agent certificate) and what its host enrolled as; null: anyone
  // (tests of the session alone).
  AccessControl* access = nullptr;
  AccessStore* access_store = nullptr;
  // Sends a session its schedules again if they changed while it was being welcomed; null:
  // Welcome's set only.
  SchedulePusher* schedules = nullptr;
};

class AgentServiceImpl : public kfleet::v1::AgentService::CallbackService {
 public:
  explicit AgentServiceImpl(SessionDeps deps) : deps_(deps) {}

  grpc::ServerBidiReactor<kfleet::v1::AgentMessage, kfleet::v1::ControllerMessage>* Session(
      grpc::CallbackServerContext* context) override;

 private:
  SessionDeps deps_;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_FLEET_AGENT_SERVICE_H_

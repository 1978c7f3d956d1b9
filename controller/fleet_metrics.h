// The controller's Prometheus side, put together (DESIGN.md, "Metrics and events"): every host's
// latest samples (metrics/host_samples.h), the controller's own metrics (metrics/self_metrics.h)
// and per-host state and kernel events, served on --metrics-listen; the file_sd list of agents
// that serve their own /metrics. It observes the agent sessions (SessionObserver).
#ifndef KFLEET_CONTROLLER_FLEET_METRICS_H_
#define KFLEET_CONTROLLER_FLEET_METRICS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controller/fleet/agent_service.h"
#include "controller/metrics/file_sd.h"
#include "controller/metrics/fleet_collector.h"
#include "controller/metrics/host_samples.h"
#include "controller/metrics/metrics_server.h"
#include "controller/metrics/self_metrics.h"
#include "controller/provision/provider.h"
#include "controller/schedule_metrics.h"
#include "controller/store/store.h"

namespace kfleet::controller {

struct FleetMetricsOptions {
  Store* store = nullptr;    // required; outlives the FleetMetrics
  std::string listen;        // HOST:PORT of /metrics; empty: not served
  std::string file_sd_path;  // the file_sd list; empty: not written
};

class HostStateCollector;

class FleetMetrics : public SessionObserver {
 public:
  // Errors: those of MetricsServer::Start (a busy port names it and the flag).
  static absl::StatusOr<std::unique_ptr<FleetMetrics>> Start(const FleetMetricsOptions& options);
  ~FleetMetrics() override;

  // The port /metrics is served on; 0 if not served.
  int port() const;
  const HostSampleTable& samples() const { return *samples_; }
  SelfMetrics& self() { return *self_; }

  // SessionObserver.
  void OnMetrics(const kfleet::v1::Host& host, const kfleet::v1::MetricsBatch& batch) override;
  void OnEvent(const kfleet::v1::Event& event) override;
  void OnEventMoved(const kfleet::v1::Event& event) override;
  // Counts them in kfleet_results_stored_total and kfleet_test_results_total.
  void OnTestResults(const std::vector<StoredTestResult>& results) override;
  void OnLogBytes(uint64_t bytes) override;
  void OnReplayedItems(int items) override;
  void OnDispatchLatency(absl::Duration latency) override;
  // Writes the file_sd list from the store's hosts.
  void OnHello(const kfleet::v1::Host& host) override;

 private:
  explicit FleetMetrics(const FleetMetricsOptions& options);

  const FleetMetricsOptions options_;
  // Declared so that the server, which reads the others, is destroyed first.
  std::unique_ptr<HostSampleTable> samples_;
  std::shared_ptr<FleetCollector> fleet_collector_;
  std::shared_ptr<HostStateCollector> host_state_;
  std::unique_ptr<SelfMetrics> self_;
  std::shared_ptr<ScheduleCollector> schedules_;
  std::unique_ptr<FileSdWriter> file_sd_;
  absl::Mutex sd_mu_;
  std::map<std::string, std::string> sd_addresses_ ABSL_GUARDED_BY(sd_mu_);  // host id -> address
  std::unique_ptr<MetricsServer> server_;
};

// `provider` with each operation counted in kfleet_provider_operations_total{provider=name}.
std::unique_ptr<provision::Provider> CountProviderOperations(
    std::unique_ptr<provision::Provider> provider, std::string name, SelfMetrics* metrics);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_FLEET_METRICS_H_

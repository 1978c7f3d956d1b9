// Samples the host at the interval the controller sets and hands each batch to the session. The
// latest batch is also kept for the agent's own /metrics (agent_metrics_server.h).
#ifndef KFLEET_AGENT_TELEMETRY_METRICS_REPORTER_H_
#define KFLEET_AGENT_TELEMETRY_METRICS_REPORTER_H_

#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::agent {

class MetricsReporter {
 public:
  using CollectFn = std::function<absl::StatusOr<std::vector<kfleet::v1::MetricSample>>()>;
  using SendFn = std::function<void(kfleet::v1::MetricsBatch)>;

  // `collect` takes one sample set (HostCollector::Collect); `send` gets each batch
  // (SessionClient::SendMetrics). Both are called on the reporter's thread. `clock` stamps the
  // batches.
  MetricsReporter(
      CollectFn collect, SendFn send,
      std::function<absl::Time()> clock = [] { return absl::Now(); });
  ~MetricsReporter();  // Stop()s

  // Starts the loop; it samples only once an interval is set.
  void Start();
  // Stops and joins the loop. Idempotent.
  void Stop();

  // Sample every `interval` from now on (zero or negative: stop sampling); the first sample of a
  // new interval is taken at once. Thread-safe.
  void SetInterval(absl::Duration interval);
  // Takes and sends a sample now if an interval is set (an OOM kill was seen: the counter's rise
  // should not wait for the next interval). Thread-safe; does not block.
  void SampleSoon();

  // The latest batch taken (for the agent's own /metrics), if any. Thread-safe.
  std::optional<kfleet::v1::MetricsBatch> Latest() const;
  // Takes a batch now, outside the loop, without sending it (for a scrape of the agent's own
  // /metrics when no interval is set). Thread-safe.
  absl::StatusOr<kfleet::v1::MetricsBatch> SampleNow();

 private:
  void Loop();
  bool WakeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CollectFn collect_;
  const SendFn send_;
  const std::function<absl::Time()> clock_;
  mutable absl::Mutex mu_;
  absl::Duration interval_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  bool interval_changed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<kfleet::v1::MetricsBatch> latest_ ABSL_GUARDED_BY(mu_);
  absl::Mutex collect_mu_;  // one collection at a time
  std::thread thread_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_TELEMETRY_METRICS_REPORTER_H_

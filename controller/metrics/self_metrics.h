// The controller's own metrics (DESIGN.md, "Metrics and events"): what happens (counters and the
// dispatch histogram, kept in a prometheus::Registry that the controller's components feed), and
// what is (commands and jobs by state, read from the store at scrape time).
#ifndef KFLEET_CONTROLLER_METRICS_SELF_METRICS_H_
#define KFLEET_CONTROLLER_METRICS_SELF_METRICS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/metrics/host_samples.h"
#include "kfleet/v1/common.pb.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace kfleet::controller {

// How many commands and jobs are in each state, by lower-case state name.
struct StateCounts {
  std::map<std::string, int64_t> commands;  // pending, accepted, running, finished, skipped
  std::map<std::string, int64_t> jobs;      // running, done
};

struct SelfMetricsOptions {
  // Called at scrape time, from an exposer thread, at most once per `state_counts_ttl`; may block
  // on the store. Empty: kfleet_commands and kfleet_jobs are not exported. On an error the last
  // counts are served again (none before the first success) and the error is logged.
  std::function<absl::StatusOr<StateCounts>()> state_counts;
  absl::Duration state_counts_ttl = absl::Seconds(1);
  // For kfleet_host_samples and kfleet_metric_samples_dropped_total; must outlive the
  // SelfMetrics. nullptr: not exported.
  const HostSampleTable* host_samples = nullptr;
  std::function<absl::Time()> now = [] { return absl::Now(); };  // the clock of the cache
};

// The `kind` label values of kfleet_events_total and kfleet_kernel_events_total: the kernel event
// kinds of docs/metrics.md (oom, oops, bug, panic, warn, hung_task, soft_lockup, kasan,
// agent_killed) and "other".
const std::vector<std::string>& KernelEventKinds();
// `kind` if it is one of KernelEventKinds(), else "other".
absl::string_view KernelEventKindLabel(absl::string_view kind);

// Exported:
//   kfleet_agents_connected                    gauge
//   kfleet_hosts{state}                        gauge: online, offline, rebooting, draining
//   kfleet_commands{state}, kfleet_jobs{state} gauges, from SelfMetricsOptions::state_counts
//   kfleet_dispatch_latency_seconds            histogram, 1 ms .. 60 s
//   kfleet_log_bytes_stored_total              counter
//   kfleet_outbox_replays_total                counter
//   kfleet_provider_operations_total{provider,op,result}  counter, result ok|error
//   kfleet_events_total{kind}                  counter: oom, oops, bug, panic, warn, hung_task,
//                                              soft_lockup, kasan, agent_killed, other
//   kfleet_results_stored_total                counter
//   kfleet_test_results_total{suite,status}    counter: suite kselftest, fstests, blktests, exec,
//                                              other; status pass, fail, skip, error
//   kfleet_host_samples                        gauge: host series held for /metrics
//   kfleet_metric_samples_dropped_total{reason}  counter, reasons of DropReasonName
// Every method is thread-safe and cheap (no I/O): call it where the thing happens.
class SelfMetrics {
 public:
  explicit SelfMetrics(SelfMetricsOptions options);
  ~SelfMetrics();
  SelfMetrics(const SelfMetrics&) = delete;
  SelfMetrics& operator=(const SelfMetrics&) = delete;

  // For MetricsServer::Start. They expire with this object.
  std::vector<std::weak_ptr<prometheus::Collectable>> Collectables() const;

  void SetAgentsConnected(int64_t agents);
  // Hosts by lower-case state name. States not in `by_state` are set to 0.
  void SetHosts(const std::map<std::string, int64_t>& by_state);

  // From a command's creation to its sending to the agent. Negative (clock step) counts as 0.
  void ObserveDispatch(absl::Duration latency);
  void AddLogBytes(uint64_t bytes);
  // Items an agent resent that were already stored.
  void AddOutboxReplays(uint64_t items);
  // `provider`: libvirt, exec...; `op`: create, destroy, list...
  void ProviderOperation(absl::string_view provider, absl::string_view op, bool ok);
  // A kernel event stored, by KernelEvent.kind; a kind not listed above counts as "other" so that
  // an agent cannot grow the label set.
  void EventStored(absl::string_view kind);
  void AddResultsStored(uint64_t results);
  // One test result stored, by TestResult.suite and .status: a suite not listed above counts as
  // "other" and an unspecified status as "error", so that an agent cannot grow the label set.
  // Does not count it in kfleet_results_stored_total (AddResultsStored does).
  void TestResultStored(absl::string_view suite, kfleet::v1::TestStatus status);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> scraped_;  // commands, jobs, host samples

  prometheus::Gauge& agents_connected_;
  prometheus::Family<prometheus::Gauge>& hosts_;
  prometheus::Histogram& dispatch_latency_;
  prometheus::Counter& log_bytes_;
  prometheus::Counter& outbox_replays_;
  prometheus::Family<prometheus::Counter>& provider_operations_;
  // Every kind, "other" included, made at construction: read without a lock.
  std::map<std::string, prometheus::Counter*, std::less<>> events_;
  prometheus::Counter& results_stored_;
  // Every suite x status, made at construction: read without a lock.
  std::map<std::pair<std::string, kfleet::v1::TestStatus>, prometheus::Counter*> test_results_;

  absl::Mutex mu_;
  std::map<std::string, prometheus::Gauge*> host_states_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_METRICS_SELF_METRICS_H_

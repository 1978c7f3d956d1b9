#include "controller/metrics/self_metrics.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"

namespace kfleet::controller {
namespace {

constexpr const char* kHostStates[] = {"online", "offline", "rebooting", "draining"};
constexpr const char* kCommandStates[] = {"pending", "accepted", "running", "finished", "skipped"};
constexpr const char* kJobStates[] = {"running", "done"};
constexpr const char* kEventKinds[] = {"oom",          "oops",      "bug",         "panic",
                                       "warn",         "hung_task", "soft_lockup", "kasan",
                                       "agent_killed", "other"};
// The suites a job's test step may name (fleet_service.cc), then "other".
constexpr const char* kTestSuites[] = {"kselftest", "fstests", "blktests", "exec", "other"};
constexpr std::pair<v1::TestStatus, const char*> kTestStatuses[] = {{v1::TEST_PASS, "pass"},
                                                                    {v1::TEST_FAIL, "fail"},
                                                                    {v1::TEST_SKIP, "skip"},
                                                                    {v1::TEST_ERROR, "error"}};

prometheus::Counter& NewCounter(prometheus::Registry& registry, const std::string& name,
                                const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

prometheus::MetricFamily GaugeFamily(const std::string& name, const std::string& help) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = prometheus::MetricType::Gauge;
  return family;
}

void AddValue(prometheus::MetricFamily& family, std::vector<prometheus::ClientMetric::Label> labels,
              double value) {
  prometheus::ClientMetric& metric = family.metric.emplace_back();
  metric.label = std::move(labels);
  if (family.type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
}

// Gauges by state: the known states always (0 when absent, so that dashboards draw a line), then
// any other state the store reported.
template <size_t N>
prometheus::MetricFamily StateFamily(const std::string& name, const std::string& help,
                                     const char* const (&known)[N],
                                     const std::map<std::string, int64_t>& counts) {
  std::map<std::string, int64_t> all;
  for (const char* state : known) all[state] = 0;
  for (const auto& [state, count] : counts) all[state] = count;
  prometheus::MetricFamily family = GaugeFamily(name, help);
  for (const auto& [state, count] : all) {
    AddValue(family, {{"state", state}}, static_cast<double>(count));
  }
  return family;
}

// What is read at scrape time. Shares nothing with SelfMetrics but its options.
class ScrapedMetrics : public prometheus::Collectable {
 public:
  explicit ScrapedMetrics(SelfMetricsOptions options) : options_(std::move(options)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families;
    if (options_.state_counts) {
      std::optional<StateCounts> counts = Counts();
      if (counts.has_value()) {
        families.push_back(
            StateFamily("kfleet_commands", "Commands by state.", kCommandStates, counts->commands));
        families.push_back(StateFamily("kfleet_jobs", "Jobs by state.", kJobStates, counts->jobs));
      }
    }
    if (options_.host_samples != nullptr) {
      HostSampleTable::Stats stats = options_.host_samples->GetStats();
      prometheus::MetricFamily held =
          GaugeFamily("kfleet_host_samples", "Host metric series held for re-export on /metrics.");
      AddValue(held, {}, static_cast<double>(stats.series));
      families.push_back(std::move(held));
      prometheus::MetricFamily dropped;
      dropped.name = "kfleet_metric_samples_dropped_total";
      dropped.help = "Host metric samples from agents that were not kept, by reason.";
      dropped.type = prometheus::MetricType::Counter;
      for (size_t i = 0; i < kDropReasons; ++i) {
        AddValue(dropped, {{"reason", std::string(DropReasonName(static_cast<DropReason>(i)))}},
                 static_cast<double>(stats.dropped[i]));
      }
      families.push_back(std::move(dropped));
    }
    return families;
  }

 private:
  // The cached counts, refreshed when older than the TTL. The lock is held across the callback
  // so that concurrent scrapes wait for one query instead of each running their own.
  std::optional<StateCounts> Counts() const {
    absl::MutexLock lock(&mu_);
    absl::Time now = options_.now();
    if (now - fetched_ < options_.state_counts_ttl) return counts_;
    fetched_ = now;
    absl::StatusOr<StateCounts> counts = options_.state_counts();
    if (counts.ok()) {
      counts_ = *std::move(counts);
    } else {
      LogWarning(
          absl::StrCat("metrics: cannot count commands and jobs: ", counts.status().ToString()));
    }
    return counts_;
  }

  const SelfMetricsOptions options_;
  mutable absl::Mutex mu_;
  mutable absl::Time fetched_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  mutable std::optional<StateCounts> counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

const std::vector<std::string>& KernelEventKinds() {
  static const std::vector<std::string>* kinds =
      new std::vector<std::string>(std::begin(kEventKinds), std::end(kEventKinds));
  return *kinds;
}

absl::string_view KernelEventKindLabel(absl::string_view kind) {
  for (const char* known : kEventKinds) {
    if (kind == known) return known;
  }
  return "other";
}

SelfMetrics::SelfMetrics(SelfMetricsOptions options)
    : registry_(std::make_shared<prometheus::Registry>()),
      scraped_(std::make_shared<ScrapedMetrics>(std::move(options))),
      agents_connected_(prometheus::BuildGauge()
                            .Name("kfleet_agents_connected")
                            .Help("Agents with an open session.")
                            .Register(*registry_)
                            .Add({})),
      hosts_(prometheus::BuildGauge()
                 .Name("kfleet_hosts")
                 .Help("Hosts by state.")
                 .Register(*registry_)),
      dispatch_latency_(
          prometheus::BuildHistogram()
              .Name("kfleet_dispatch_latency_seconds")
              .Help("Time from a command's creation to its sending to the agent.")
              .Register(*registry_)
              .Add({},
                   prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                           0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60})),
      log_bytes_(
          NewCounter(*registry_, "kfleet_log_bytes_stored_total", "Bytes of command logs stored.")),
      outbox_replays_(NewCounter(*registry_, "kfleet_outbox_replays_total",
                                 "Items an agent resent that were already stored.")),
      provider_operations_(prometheus::BuildCounter()
                               .Name("kfleet_provider_operations_total")
                               .Help("Provisioning provider operations, by result.")
                               .Register(*registry_)),
      results_stored_(
          NewCounter(*registry_, "kfleet_results_stored_total", "Test results stored.")) {
  auto& events = prometheus::BuildCounter()
                     .Name("kfleet_events_total")
                     .Help("Kernel events stored (OOM kills, oopses, panics...), by kind.")
                     .Register(*registry_);
  for (const char* kind : kEventKinds) events_[kind] = &events.Add({{"kind", kind}});
  // At 0 from the start, so that increase() counts the first result of each suite and status.
  auto& tests = prometheus::BuildCounter()
                    .Name("kfleet_test_results_total")
                    .Help("Test results stored, by suite and status (pass, fail, skip, error).")
                    .Register(*registry_);
  for (const char* suite : kTestSuites) {
    for (const auto& [status, name] : kTestStatuses) {
      test_results_[{suite, status}] = &tests.Add({{"suite", suite}, {"status", name}});
    }
  }
  absl::MutexLock lock(&mu_);
  for (const char* state : kHostStates) host_states_[state] = &hosts_.Add({{"state", state}});
}

SelfMetrics::~SelfMetrics() = default;

std::vector<std::weak_ptr<prometheus::Collectable>> SelfMetrics::Collectables() const {
  return {registry_, scraped_};
}

void SelfMetrics::SetAgentsConnected(int64_t agents) {
  agents_connected_.Set(static_cast<double>(agents));
}

void SelfMetrics::SetHosts(const std::map<std::string, int64_t>& by_state) {
  absl::MutexLock lock(&mu_);
  for (const auto& [state, count] : by_state) {
    auto [it, inserted] = host_states_.try_emplace(state, nullptr);
    if (inserted) it->second = &hosts_.Add({{"state", state}});
  }
  for (const auto& [state, gauge] : host_states_) {
    auto it = by_state.find(state);
    gauge->Set(it == by_state.end() ? 0.0 : static_cast<double>(it->second));
  }
}

void SelfMetrics::ObserveDispatch(absl::Duration latency) {
  dispatch_latency_.Observe(std::max(0.0, absl::ToDoubleSeconds(latency)));
}

void SelfMetrics::AddLogBytes(uint64_t bytes) { log_bytes_.Increment(static_cast<double>(bytes)); }

void SelfMetrics::AddOutboxReplays(uint64_t items) {
  outbox_replays_.Increment(static_cast<double>(items));
}

void SelfMetrics::ProviderOperation(absl::string_view provider, absl::string_view op, bool ok) {
  provider_operations_
      .Add({{"provider", std::string(provider)},
            {"op", std::string(op)},
            {"result", ok ? "ok" : "error"}})
      .Increment();
}

void SelfMetrics::EventStored(absl::string_view kind) {
  auto it = events_.find(kind);
  if (it == events_.end()) it = events_.find("other");
  it->second->Increment();
}

void SelfMetrics::AddResultsStored(uint64_t results) {
  results_stored_.Increment(static_cast<double>(results));
}

void SelfMetrics::TestResultStored(absl::string_view suite, v1::TestStatus status) {
  bool known = false;
  for (const auto& [s, name] : kTestStatuses) known = known || s == status;
  if (!known) status = v1::TEST_ERROR;  // unspecified: it could not be judged
  auto it = test_results_.find({std::string(suite), status});
  if (it == test_results_.end()) it = test_results_.find({"other", status});
  it->second->Increment();
}

}  // namespace kfleet::controller

#include "controller/fleet_metrics.h"

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "controller/metrics/label_names.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace kfleet::controller {

namespace {

constexpr absl::Duration kHostsTtl = absl::Seconds(1);

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

prometheus::ClientMetric Sample(const LabelPairs& target, double value,
                                std::vector<std::pair<std::string, std::string>> extra = {}) {
  prometheus::ClientMetric m;
  for (const auto& [k, v] : target) m.label.push_back({k, v});
  for (auto& [k, v] : extra) m.label.push_back({std::move(k), std::move(v)});
  m.gauge.value = value;
  m.counter.value = value;
  return m;
}

}  // namespace

// Per host, at scrape time: kfleet_host_up (1 online, 0 otherwise) and
// kfleet_kernel_events_total{kind} (events stored since the controller started), every kind of
// KernelEventKinds() for every known host, at 0 until its first event, so that increase() counts
// that one too (hosts x 10 series; an agent's made-up kind counts as "other"). Also keeps the
// sample table to hosts that are online (an offline or destroyed host's series disappear, so that
// Prometheus marks them stale instead of repeating old values), and the self metrics' host counts.
class HostStateCollector : public prometheus::Collectable {
 public:
  HostStateCollector(Store* store, HostSampleTable* samples, SelfMetrics* self)
      : store_(store), samples_(samples), self_(self) {}

  void EventStored(const std::string& host_id, const std::string& kind) {
    absl::MutexLock lock(&mu_);
    ++events_[host_id][std::string(KernelEventKindLabel(kind))];
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    absl::StatusOr<std::vector<v1::Host>> hosts = Hosts();
    if (!hosts.ok()) return {};
    prometheus::MetricFamily up{"kfleet_host_up",
                                "1 if the host's agent is connected (online), 0 if not",
                                prometheus::MetricType::Gauge,
                                {}};
    prometheus::MetricFamily events{"kfleet_kernel_events_total",
                                    "Kernel events of the host stored since the controller "
                                    "started (kctl events --host HOST --kind KIND)",
                                    prometheus::MetricType::Counter,
                                    {}};
    std::map<std::string, int64_t> by_state;
    std::set<std::string> online;
    std::set<std::string> names;
    absl::MutexLock lock(&mu_);
    for (const v1::Host& h : *hosts) {
      ++by_state[Lower(v1::HostState_Name(h.state()))];
      if (h.state() == v1::ONLINE) online.insert(h.id());
      // A name held by two records (an old one renamed away) is exported once.
      if (!names.insert(h.name()).second) continue;
      LabelPairs target = TargetLabels(
          h.name(), std::map<std::string, std::string>(h.labels().begin(), h.labels().end()));
      up.metric.push_back(Sample(target, h.state() == v1::ONLINE ? 1 : 0));
      auto it = events_.find(h.id());
      for (const std::string& kind : KernelEventKinds()) {
        int64_t n = 0;
        if (it != events_.end()) {
          auto counted = it->second.find(kind);
          if (counted != it->second.end()) n = counted->second;
        }
        events.metric.push_back(Sample(target, static_cast<double>(n), {{"kind", kind}}));
      }
    }
    for (const HostSamplesView& v : samples_->Views()) {
      if (!online.count(v.host->id)) samples_->Remove(v.host->id);
    }
    self_->SetHosts(by_state);
    self_->SetAgentsConnected(static_cast<int64_t>(online.size()));
    std::vector<prometheus::MetricFamily> out;
    out.push_back(std::move(up));
    if (!events.metric.empty()) out.push_back(std::move(events));
    return out;
  }

 private:
  // The store's hosts, read at most once per kHostsTtl (scrapes may come often).
  absl::StatusOr<std::vector<v1::Host>> Hosts() const {
    absl::MutexLock lock(&hosts_mu_);
    absl::Time now = absl::Now();
    if (!hosts_.ok() || now - hosts_at_ > kHostsTtl) {
      hosts_ = store_->ListHosts();
      hosts_at_ = now;
      if (!hosts_.ok()) LogWarning(absl::StrCat("metrics: ", hosts_.status().ToString()));
    }
    return hosts_;
  }

  Store* const store_;
  HostSampleTable* const samples_;
  SelfMetrics* const self_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::map<std::string, int64_t>> events_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex hosts_mu_;
  mutable absl::StatusOr<std::vector<v1::Host>> hosts_ ABSL_GUARDED_BY(hosts_mu_) =
      absl::UnavailableError("not read yet");
  mutable absl::Time hosts_at_ ABSL_GUARDED_BY(hosts_mu_);
};

FleetMetrics::FleetMetrics(const FleetMetricsOptions& options) : options_(options) {}

FleetMetrics::~FleetMetrics() { server_.reset(); }

absl::StatusOr<std::unique_ptr<FleetMetrics>> FleetMetrics::Start(
    const FleetMetricsOptions& options) {
  std::unique_ptr<FleetMetrics> m(new FleetMetrics(options));
  m->samples_ = std::make_unique<HostSampleTable>();
  m->fleet_collector_ = std::make_shared<FleetCollector>(*m->samples_);
  SelfMetricsOptions self;
  self.host_samples = m->samples_.get();
  Store* store = options.store;
  self.state_counts = [store]() -> absl::StatusOr<StateCounts> {
    ASSIGN_OR_RETURN(StoreStateCounts counts, store->CountStates());
    return StateCounts{std::move(counts.commands), std::move(counts.jobs)};
  };
  m->self_ = std::make_unique<SelfMetrics>(std::move(self));
  m->host_state_ =
      std::make_shared<HostStateCollector>(options.store, m->samples_.get(), m->self_.get());
  if (!options.file_sd_path.empty()) {
    std::string dir = options.file_sd_path.substr(0, options.file_sd_path.rfind('/'));
    RETURN_IF_ERROR(MakeDirs(dir));
    m->file_sd_ = std::make_unique<FileSdWriter>(options.file_sd_path);
    // The list exists from the start (empty until an agent serves its own /metrics), so that a
    // Prometheus pointed at it finds a file.
    RETURN_IF_ERROR(m->file_sd_->Write({}).status());
  }
  if (!options.listen.empty()) {
    // The host state first: it prunes the sample table and sets the host counts that the others
    // then export.
    std::vector<std::weak_ptr<prometheus::Collectable>> collectables{m->host_state_};
    for (auto& c : m->self_->Collectables()) collectables.push_back(std::move(c));
    m->schedules_ = std::make_shared<ScheduleCollector>(options.store);
    collectables.push_back(m->schedules_);
    collectables.push_back(m->fleet_collector_);
    ASSIGN_OR_RETURN(m->server_, MetricsServer::Start(options.listen, std::move(collectables)));
    LogInfo(absl::StrCat("metrics on http://", options.listen.substr(0, options.listen.rfind(':')),
                         ":", m->server_->port(), "/metrics"));
  }
  return m;
}

int FleetMetrics::port() const { return server_ ? server_->port() : 0; }

void FleetMetrics::OnMetrics(const v1::Host& host, const v1::MetricsBatch& batch) {
  // What it drops is counted in the table (kfleet_metric_samples_dropped_total).
  samples_->Update(host.id(), host.name(),
                   std::map<std::string, std::string>(host.labels().begin(), host.labels().end()),
                   batch.time_unix_ms(),
                   std::vector<v1::MetricSample>(batch.samples().begin(), batch.samples().end()));
}

void FleetMetrics::OnEvent(const v1::Event& event) {
  self_->EventStored(event.kind());
  host_state_->EventStored(event.host_id(), event.kind());
}

void FleetMetrics::OnEventMoved(const v1::Event& event) {
  // The host it was first stored on keeps its count: counters never go down.
  host_state_->EventStored(event.host_id(), event.kind());
}

void FleetMetrics::OnTestResults(const std::vector<StoredTestResult>& results) {
  self_->AddResultsStored(results.size());
  for (const StoredTestResult& r : results) self_->TestResultStored(r.suite, r.status);
}

void FleetMetrics::OnLogBytes(uint64_t bytes) { self_->AddLogBytes(bytes); }

void FleetMetrics::OnReplayedItems(int items) {
  self_->AddOutboxReplays(static_cast<uint64_t>(items));
}

void FleetMetrics::OnDispatchLatency(absl::Duration latency) { self_->ObserveDispatch(latency); }

void FleetMetrics::OnHello(const v1::Host& host) {
  if (file_sd_ == nullptr) return;
  // Every Hello passes here (the agent session): only a host whose /metrics address appeared,
  // changed or went away rewrites the list, so reconnecting fleets do not read every host each.
  {
    absl::MutexLock lock(&sd_mu_);
    auto it = sd_addresses_.find(host.id());
    std::string before = it == sd_addresses_.end() ? "" : it->second;
    if (before == host.metrics_address()) return;
    if (host.metrics_address().empty()) {
      sd_addresses_.erase(host.id());
    } else {
      sd_addresses_[host.id()] = host.metrics_address();
    }
  }
  absl::StatusOr<std::vector<v1::Host>> hosts = options_.store->ListHosts();
  if (!hosts.ok()) return;
  std::vector<SdHost> sd;
  for (const v1::Host& h : *hosts) {
    if (h.metrics_address().empty()) continue;
    sd.push_back(SdHost{h.name(), {h.labels().begin(), h.labels().end()}, h.metrics_address()});
  }
  absl::StatusOr<bool> wrote = file_sd_->Write(sd);
  if (!wrote.ok()) LogWarning(absl::StrCat("metrics: file_sd: ", wrote.status().ToString()));
}

namespace {

class CountingProvider : public provision::Provider {
 public:
  CountingProvider(std::unique_ptr<provision::Provider> inner, std::string name,
                   SelfMetrics* metrics)
      : inner_(std::move(inner)), name_(std::move(name)), metrics_(metrics) {}

  absl::StatusOr<provision::GuestInfo> Create(const provision::GuestSpec& spec) override {
    return Count("create", inner_->Create(spec));
  }
  absl::Status Destroy(const std::string& name) override {
    return Count("destroy", inner_->Destroy(name));
  }
  absl::Status PowerCycle(const std::string& name) override {
    return Count("power_cycle", inner_->PowerCycle(name));
  }
  absl::Status SetKernel(const std::string& name, const std::string& kernel,
                         const std::string& initrd) override {
    return Count("set_kernel", inner_->SetKernel(name, kernel, initrd));
  }
  absl::Status BootOnce(const std::string& name, const std::string& extra_cmdline,
                        const std::string& kernel, const std::string& initrd) override {
    return Count("boot_once", inner_->BootOnce(name, extra_cmdline, kernel, initrd));
  }
  absl::StatusOr<std::string> ConsoleLog(const std::string& name, size_t max_bytes) override {
    return Count("console_log", inner_->ConsoleLog(name, max_bytes));
  }
  absl::StatusOr<std::vector<provision::GuestInfo>> List() override {
    return Count("list", inner_->List());
  }

 private:
  template <typename T>
  T Count(absl::string_view op, T result) {
    metrics_->ProviderOperation(name_, op, result.ok());
    return result;
  }

  std::unique_ptr<provision::Provider> inner_;
  const std::string name_;
  SelfMetrics* const metrics_;
};

}  // namespace

std::unique_ptr<provision::Provider> CountProviderOperations(
    std::unique_ptr<provision::Provider> provider, std::string name, SelfMetrics* metrics) {
  return std::make_unique<CountingProvider>(std::move(provider), std::move(name), metrics);
}

}  // namespace kfleet::controller

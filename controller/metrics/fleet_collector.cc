#include "controller/metrics/fleet_collector.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "common/metric_names.h"
#include "prometheus/client_metric.h"

namespace kfleet::controller {
namespace {

prometheus::MetricFamily NewFamily(const std::string& name) {
  prometheus::MetricFamily family;
  family.name = name;
  // The table only holds names FindHostMetric knew; untyped is for a table changed since.
  const MetricInfo* info = FindHostMetric(name);
  if (info == nullptr) return family;
  family.help = HostMetricHelp(name);
  switch (info->type) {
    case MetricType::kGauge:
      family.type = prometheus::MetricType::Gauge;
      break;
    case MetricType::kCounter:
      family.type = prometheus::MetricType::Counter;
      break;
    case MetricType::kUntyped:
      break;
  }
  return family;
}

// Host labels and sample labels, both sorted, merged in name order; the sample's wins a clash.
std::vector<prometheus::ClientMetric::Label> MergeLabels(const LabelPairs& host,
                                                         const LabelPairs& sample) {
  std::vector<prometheus::ClientMetric::Label> out;
  out.reserve(host.size() + sample.size());
  auto h = host.begin();
  auto s = sample.begin();
  while (h != host.end() || s != sample.end()) {
    if (s == sample.end() || (h != host.end() && h->first < s->first)) {
      out.push_back({h->first, h->second});
      ++h;
    } else {
      if (h != host.end() && h->first == s->first) ++h;
      out.push_back({s->first, s->second});
      ++s;
    }
  }
  return out;
}

void SetValue(prometheus::MetricType type, double value, prometheus::ClientMetric& metric) {
  switch (type) {
    case prometheus::MetricType::Gauge:
      metric.gauge.value = value;
      break;
    case prometheus::MetricType::Counter:
      metric.counter.value = value;
      break;
    default:
      metric.untyped.value = value;
      break;
  }
}

}  // namespace

std::vector<prometheus::MetricFamily> FleetCollector::Collect() const {
  // The views keep the batches alive, so the index can point into their names.
  const std::vector<HostSamplesView> views = table_.Views();
  std::vector<prometheus::MetricFamily> families;
  absl::flat_hash_map<absl::string_view, size_t> index;
  // Sized first: growing 100,000 ClientMetrics by doubling costs more than this pass.
  absl::flat_hash_map<absl::string_view, size_t> sizes;
  for (const HostSamplesView& view : views) {
    for (const HeldSample& sample : view.latest->samples) ++sizes[sample.name];
  }
  const std::string* previous_name = nullptr;
  for (const HostSamplesView& view : views) {
    // Two hosts of one name would give duplicate series, which make Prometheus reject samples:
    // the first by id is exported.
    if (previous_name != nullptr && *previous_name == view.host->name) continue;
    previous_name = &view.host->name;
    const LabelPairs& host_labels = view.host->target_labels;
    prometheus::MetricFamily* family = nullptr;
    for (const HeldSample& sample : view.latest->samples) {
      // A batch is sorted by name: look the family up once per name, not once per sample.
      if (family == nullptr || family->name != sample.name) {
        auto [it, inserted] = index.try_emplace(sample.name, families.size());
        if (inserted) {
          families.push_back(NewFamily(sample.name));
          families.back().metric.reserve(sizes[sample.name]);
        }
        family = &families[it->second];
      }
      prometheus::ClientMetric& metric = family->metric.emplace_back();
      metric.label = MergeLabels(host_labels, sample.labels);
      SetValue(family->type, sample.value, metric);
    }
  }
  std::sort(families.begin(), families.end(),
            [](const prometheus::MetricFamily& a, const prometheus::MetricFamily& b) {
              return a.name < b.name;
            });
  return families;
}

}  // namespace kfleet::controller

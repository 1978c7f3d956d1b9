// The host samples of the whole fleet as Prometheus metric families: what lets one scrape of the
// controller cover guests Prometheus cannot reach (DESIGN.md, "Metrics and events").
#ifndef KFLEET_CONTROLLER_METRICS_FLEET_COLLECTOR_H_
#define KFLEET_CONTROLLER_METRICS_FLEET_COLLECTOR_H_

#include <vector>

#include "controller/metrics/host_samples.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace kfleet::controller {

// Builds the families from the table at every scrape, rather than keeping one prometheus-cpp
// object per series: a fleet of thousands of hosts holds hundreds of thousands of series.
//
// Output, for every metric name held by any host, one family (prometheus-cpp writes two families
// of one name as two blocks, which Prometheus rejects), families sorted by name, series by host
// name then labels. Each series is labelled:
//   instance=<host name>, host=<host name>  (dashboards made for node_exporter select `instance`)
//   the host's labels, names sanitized (see TargetLabels)
//   the sample's own labels; on a name clash with a host label the sample's label wins.
// Of two hosts with the same name (which would make duplicate series) only the first by id is
// exported.
// HELP and TYPE come from common/metric_names.h (node_exporter's, so node_vmstat_* is untyped).
// No timestamps: Prometheus stamps the scrape, and a series whose host stops reporting stays until
// the host is removed.
//
// Collect() is thread-safe (the exposer calls it from its HTTP threads); `table` must outlive
// this collector.
class FleetCollector : public prometheus::Collectable {
 public:
  explicit FleetCollector(const HostSampleTable& table) : table_(table) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const HostSampleTable& table_;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_METRICS_FLEET_COLLECTOR_H_

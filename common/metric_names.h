// The metrics kfleet reports, by name: the host samples the agent collects (node_exporter's
// names, units and label sets, so dashboards and alert rules made for node_exporter keep working)
// and kfleet's own. One table, read by the agent (what it collects), the controller (HELP and TYPE
// of its exposition) and docs/metrics.md.
#ifndef KFLEET_COMMON_METRIC_NAMES_H_
#define KFLEET_COMMON_METRIC_NAMES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace kfleet {

enum class MetricType { kGauge, kCounter };

struct MetricInfo {
  const char* name;    // e.g. "node_memory_MemAvailable_bytes"
  MetricType type;
  const char* labels;  // the labels a sample carries besides host ones, e.g. "device", "" for none
  const char* help;    // node_exporter's help text where it has one
};

// Every host metric the agent may send. For node_memory_* only the fields listed here are
// described; FindHostMetric also accepts any other node_memory_<Field>_bytes gauge of
// /proc/meminfo (node_exporter exports every field) and any node_vmstat_<field> counter.
const std::vector<MetricInfo>& HostMetrics();

// The entry for `name`, or a gauge/counter made up for the families FindHostMetric accepts by
// pattern (see HostMetrics). nullptr for a name kfleet does not know: the controller drops such
// samples rather than export something undescribed.
const MetricInfo* FindHostMetric(absl::string_view name);

}  // namespace kfleet

#endif  // KFLEET_COMMON_METRIC_NAMES_H_

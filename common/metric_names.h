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

// kUntyped is what node_exporter declares for node_vmstat_* (`# TYPE node_vmstat_oom_kill
// untyped`): a re-exporter must say the same so that rules written against node_exporter behave
// the same.
enum class MetricType { kGauge, kCounter, kUntyped };

struct MetricInfo {
  const char* name;  // e.g. "node_memory_MemAvailable_bytes"; a pattern for the families below
  MetricType type;
  const char* labels;  // the labels a sample carries besides host ones, comma-separated, e.g.
                       // "device" or "device,fstype,mountpoint"; "" for none
  const char* help;    // node_exporter's help text where it has one
};

// Every host metric the agent may send. For node_memory_* only the fields listed here are
// described; FindHostMetric also accepts any other /proc/meminfo field the way node_exporter
// exports it (node_memory_<Field>_bytes for kB fields, node_memory_<Field> for counts such as
// HugePages_Total, all gauges) and any node_vmstat_<field> (untyped, as node_exporter does).
// Thread-safe; the vector lives for the whole program.
const std::vector<MetricInfo>& HostMetrics();

// The entry for `name`, or for the families FindHostMetric accepts by pattern (see HostMetrics)
// a shared entry whose `name` is the pattern ("node_memory_<Field>_bytes", "node_memory_<Field>",
// "node_vmstat_<field>") and whose `help` is generic: use HostMetricHelp for the text of a given
// name. nullptr for a name kfleet does not know: the controller drops such samples rather than
// export something undescribed. Thread-safe; the pointer lives for the whole program.
const MetricInfo* FindHostMetric(absl::string_view name);

// node_exporter's HELP text for `name`, including the per-field text of the pattern families
// ("Memory information field MemFree_bytes."), or "" for an unknown name.
std::string HostMetricHelp(absl::string_view name);

// "gauge", "counter" or "untyped", as in a Prometheus `# TYPE` line.
absl::string_view MetricTypeName(MetricType type);

}  // namespace kfleet

#endif  // KFLEET_COMMON_METRIC_NAMES_H_

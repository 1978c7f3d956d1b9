// What `kctl top` shows of each host: the hosts of ListHosts joined with their samples from
// GetHostMetrics (node_exporter's names) and with the jobs of the commands they run.
#ifndef KFLEET_CLI_TOP_VIEW_H_
#define KFLEET_CLI_TOP_VIEW_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

// The metric names top asks GetHostMetrics for; `cpu` adds the CPU counters (many samples: one
// per CPU and mode).
std::vector<std::string> TopMetricNames(bool cpu);

struct TopRunning {
  std::string command_id;
  std::string job_id;  // "" when the job was not found
  std::string job_name;
};

// One host. A value is missing when its samples are: no samples yet, or, for rates, only one
// batch so far (or a counter that went down: the agent restarted).
struct TopRow {
  std::string name;
  std::string id;
  v1::HostState state = v1::HOST_STATE_UNSPECIFIED;
  std::map<std::string, std::string> labels;
  int64_t sample_unix_ms = 0;  // when the agent took the latest batch; 0: no samples
  std::optional<int64_t> mem_total_bytes;
  std::optional<int64_t> mem_used_bytes;  // MemTotal - MemAvailable
  std::optional<double> load1;
  std::optional<double> cpu_busy_percent;  // all CPUs together, not idle nor iowait
  // The share of wall time some task waited for the resource (PSI "some"), in percent: the rate
  // of node_pressure_*_waiting_seconds_total between the two batches, times 100.
  std::optional<double> psi_cpu_percent;
  std::optional<double> psi_memory_percent;
  std::optional<double> psi_io_percent;
  std::optional<int64_t> oom_kills;      // node_vmstat_oom_kill: since the host booted
  std::optional<int64_t> oom_kills_new;  // of those, since the batch before
  std::vector<TopRunning> running;
};

// One row per host of `hosts`, sorted by name. `metrics` are matched by host id; `jobs` (may be
// empty) name the jobs of running commands.
std::vector<TopRow> BuildTopRows(const v1::ListHostsResponse& hosts,
                                 const v1::GetHostMetricsResponse& metrics,
                                 const v1::ListJobsResponse& jobs);

// HOST STATE MEM LOAD1 PSI-CPU PSI-MEM PSI-IO OOM AGE RUNNING; `wide` adds CPU (busy %) after
// LOAD1. MEM is used/total; OOM is the count since boot, "3(+1)" when it rose since the batch
// before; AGE is the age of the samples; RUNNING, last as it has blanks, is each running command
// with its job: "c-1 (j-1 smoke)".
std::string RenderTopTable(const std::vector<TopRow>& rows, bool wide, absl::Time now);

// The hosts whose OOM count rose since the batch before.
std::vector<std::string> HostsWithNewOoms(const std::vector<TopRow>& rows);

// {"hosts": [{"name": ..., "mem_used_bytes": ..., ...}]}: the rows' fields, those missing left out,
// with "sample_age_ms" computed at `now`. Ends with a newline.
std::string TopJson(const std::vector<TopRow>& rows, absl::Time now);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_TOP_VIEW_H_

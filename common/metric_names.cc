#include "common/metric_names.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace kfleet {
namespace {

constexpr MetricType kGauge = MetricType::kGauge;
constexpr MetricType kCounter = MetricType::kCounter;
constexpr MetricType kUntyped = MetricType::kUntyped;

constexpr char kDisk[] = "device";
constexpr char kFs[] = "device,fstype,mountpoint";

// Help texts are node_exporter 1.5's, verbatim (including its "The number of writes merged."
// next to "The total number of reads merged.").
const std::vector<MetricInfo>* BuildHostMetrics() {
  return new std::vector<MetricInfo>{
      // time, boot
      {"node_time_seconds", kGauge, "", "System time in seconds since epoch (1970)."},
      {"node_boot_time_seconds", kGauge, "", "Node boot time, in unixtime."},
      {"kfleet_host_boot_info", kGauge, "boot_id",
       "The running boot of the host (/proc/sys/kernel/random/boot_id); always 1. A new boot_id "
       "means the host rebooted."},
      // the running kernel: node_exporter's uname collector
      {"node_uname_info", kGauge, "sysname,release,version,machine,nodename,domainname",
       "Labeled system information as provided by the uname system call."},
      // systemd units the agent watches (kfleet-agent --watch-units); `unit` is bounded by the
      // agent (kMaxWatchedUnits), `result` is one of systemd's Service.Result words or "other"
      {"kfleet_unit_active", kGauge, "unit", "1 while the unit runs (activating, active...)."},
      {"kfleet_unit_runs_total", kCounter, "unit,result",
       "Runs of the unit that ended since the agent started, by result (success, exit-code, "
       "signal, oom-kill, timeout...)."},
      {"kfleet_unit_last_result", kGauge, "unit,result",
       "1 for the result of the unit's last run that ended."},
      {"kfleet_unit_last_run_timestamp_seconds", kGauge, "unit",
       "When the unit's last run ended, in unixtime."},
      {"kfleet_unit_last_duration_seconds", kGauge, "unit", "How long the unit's last run took."},
      {"kfleet_unit_last_peak_memory_bytes", kGauge, "unit",
       "The highest memory use of the unit's cgroup seen during its last run (memory.peak)."},
      {"kfleet_unit_oom_kills_total", kCounter, "unit",
       "Processes of the unit the kernel's OOM killer killed since the agent started."},
      {"kfleet_unit_timer_last_trigger_timestamp_seconds", kGauge, "unit",
       "When the timer that starts the unit last triggered, in unixtime."},
      {"kfleet_unit_timer_interval_seconds", kGauge, "unit",
       "The interval of the timer that starts the unit (OnUnitInactiveSec, else "
       "OnUnitActiveSec)."},
      // load and /proc/stat
      {"node_load1", kGauge, "", "1m load average."},
      {"node_load5", kGauge, "", "5m load average."},
      {"node_load15", kGauge, "", "15m load average."},
      {"node_procs_running", kGauge, "", "Number of processes in runnable state."},
      {"node_procs_blocked", kGauge, "",
       "Number of processes blocked waiting for I/O to complete."},
      {"node_context_switches_total", kCounter, "", "Total number of context switches."},
      {"node_forks_total", kCounter, "", "Total number of forks."},
      {"node_intr_total", kCounter, "", "Total number of interrupts serviced."},
      {"node_cpu_seconds_total", kCounter, "cpu,mode", "Seconds the CPUs spent in each mode."},
      // /proc/meminfo: the fields dashboards use; every other field is accepted by pattern.
      {"node_memory_MemTotal_bytes", kGauge, "", "Memory information field MemTotal_bytes."},
      {"node_memory_MemFree_bytes", kGauge, "", "Memory information field MemFree_bytes."},
      {"node_memory_MemAvailable_bytes", kGauge, "",
       "Memory information field MemAvailable_bytes."},
      {"node_memory_Buffers_bytes", kGauge, "", "Memory information field Buffers_bytes."},
      {"node_memory_Cached_bytes", kGauge, "", "Memory information field Cached_bytes."},
      {"node_memory_SwapCached_bytes", kGauge, "", "Memory information field SwapCached_bytes."},
      {"node_memory_SwapTotal_bytes", kGauge, "", "Memory information field SwapTotal_bytes."},
      {"node_memory_SwapFree_bytes", kGauge, "", "Memory information field SwapFree_bytes."},
      {"node_memory_Dirty_bytes", kGauge, "", "Memory information field Dirty_bytes."},
      {"node_memory_Writeback_bytes", kGauge, "", "Memory information field Writeback_bytes."},
      {"node_memory_AnonPages_bytes", kGauge, "", "Memory information field AnonPages_bytes."},
      {"node_memory_Shmem_bytes", kGauge, "", "Memory information field Shmem_bytes."},
      {"node_memory_Slab_bytes", kGauge, "", "Memory information field Slab_bytes."},
      {"node_memory_SUnreclaim_bytes", kGauge, "", "Memory information field SUnreclaim_bytes."},
      {"node_memory_Committed_AS_bytes", kGauge, "",
       "Memory information field Committed_AS_bytes."},
      {"node_memory_HugePages_Total", kGauge, "", "Memory information field HugePages_Total."},
      {"node_memory_HugePages_Free", kGauge, "", "Memory information field HugePages_Free."},
      // /proc/vmstat: node_exporter's default field set, untyped as node_exporter declares them.
      {"node_vmstat_oom_kill", kUntyped, "", "/proc/vmstat information field oom_kill."},
      {"node_vmstat_pgfault", kUntyped, "", "/proc/vmstat information field pgfault."},
      {"node_vmstat_pgmajfault", kUntyped, "", "/proc/vmstat information field pgmajfault."},
      {"node_vmstat_pgpgin", kUntyped, "", "/proc/vmstat information field pgpgin."},
      {"node_vmstat_pgpgout", kUntyped, "", "/proc/vmstat information field pgpgout."},
      {"node_vmstat_pswpin", kUntyped, "", "/proc/vmstat information field pswpin."},
      {"node_vmstat_pswpout", kUntyped, "", "/proc/vmstat information field pswpout."},
      // PSI
      {"node_pressure_cpu_waiting_seconds_total", kCounter, "",
       "Total time in seconds that processes have waited for CPU time"},
      {"node_pressure_memory_waiting_seconds_total", kCounter, "",
       "Total time in seconds that processes have waited for memory"},
      {"node_pressure_memory_stalled_seconds_total", kCounter, "",
       "Total time in seconds no process could make progress due to memory congestion"},
      {"node_pressure_io_waiting_seconds_total", kCounter, "",
       "Total time in seconds that processes have waited due to IO congestion"},
      {"node_pressure_io_stalled_seconds_total", kCounter, "",
       "Total time in seconds no process could make progress due to IO congestion"},
      // /proc/diskstats
      {"node_disk_reads_completed_total", kCounter, kDisk,
       "The total number of reads completed successfully."},
      {"node_disk_reads_merged_total", kCounter, kDisk, "The total number of reads merged."},
      {"node_disk_read_bytes_total", kCounter, kDisk,
       "The total number of bytes read successfully."},
      {"node_disk_read_time_seconds_total", kCounter, kDisk,
       "The total number of seconds spent by all reads."},
      {"node_disk_writes_completed_total", kCounter, kDisk,
       "The total number of writes completed successfully."},
      {"node_disk_writes_merged_total", kCounter, kDisk, "The number of writes merged."},
      {"node_disk_written_bytes_total", kCounter, kDisk,
       "The total number of bytes written successfully."},
      {"node_disk_write_time_seconds_total", kCounter, kDisk,
       "This is the total number of seconds spent by all writes."},
      {"node_disk_io_now", kGauge, kDisk, "The number of I/Os currently in progress."},
      {"node_disk_io_time_seconds_total", kCounter, kDisk, "Total seconds spent doing I/Os."},
      {"node_disk_io_time_weighted_seconds_total", kCounter, kDisk,
       "The weighted # of seconds spent doing I/Os."},
      // filesystems
      {"node_filesystem_size_bytes", kGauge, kFs, "Filesystem size in bytes."},
      {"node_filesystem_free_bytes", kGauge, kFs, "Filesystem free space in bytes."},
      {"node_filesystem_avail_bytes", kGauge, kFs,
       "Filesystem space available to non-root users in bytes."},
      {"node_filesystem_files", kGauge, kFs, "Filesystem total file nodes."},
      {"node_filesystem_files_free", kGauge, kFs, "Filesystem total free file nodes."},
      {"node_filesystem_readonly", kGauge, kFs, "Filesystem read-only status."},
      {"node_filesystem_device_error", kGauge, kFs,
       "Whether an error occurred while getting statistics for the given device."},
  };
}

// The pattern families. One static entry each: callers get a stable pointer without the table
// growing with every name a peer sends.
const MetricInfo kMemoryBytesFamily{"node_memory_<Field>_bytes", kGauge, "",
                                    "Memory information field <Field>_bytes."};
const MetricInfo kMemoryCountFamily{"node_memory_<Field>", kGauge, "",
                                    "Memory information field <Field>."};
const MetricInfo kVmstatFamily{"node_vmstat_<field>", kUntyped, "",
                               "/proc/vmstat information field <field>."};

constexpr absl::string_view kMemoryPrefix = "node_memory_";
constexpr absl::string_view kVmstatPrefix = "node_vmstat_";

// What node_exporter can produce from a /proc key: letters, digits and '_' ("Active(anon)"
// becomes "Active_anon"), not empty.
bool IsFieldName(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

const MetricInfo* FindExact(absl::string_view name) {
  for (const MetricInfo& m : HostMetrics()) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

}  // namespace

const std::vector<MetricInfo>& HostMetrics() {
  static const std::vector<MetricInfo>* metrics = BuildHostMetrics();
  return *metrics;
}

const MetricInfo* FindHostMetric(absl::string_view name) {
  if (const MetricInfo* m = FindExact(name)) return m;
  if (absl::StartsWith(name, kMemoryPrefix)) {
    absl::string_view field = name.substr(kMemoryPrefix.size());
    if (!IsFieldName(field)) return nullptr;
    if (absl::ConsumeSuffix(&field, "_bytes")) {
      return IsFieldName(field) ? &kMemoryBytesFamily : nullptr;
    }
    return &kMemoryCountFamily;
  }
  if (absl::StartsWith(name, kVmstatPrefix)) {
    return IsFieldName(name.substr(kVmstatPrefix.size())) ? &kVmstatFamily : nullptr;
  }
  return nullptr;
}

std::string HostMetricHelp(absl::string_view name) {
  const MetricInfo* m = FindHostMetric(name);
  if (m == nullptr) return "";
  if (m == &kMemoryBytesFamily || m == &kMemoryCountFamily) {
    return absl::StrCat("Memory information field ", name.substr(kMemoryPrefix.size()), ".");
  }
  if (m == &kVmstatFamily) {
    return absl::StrCat("/proc/vmstat information field ", name.substr(kVmstatPrefix.size()), ".");
  }
  return m->help;
}

absl::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kCounter:
      return "counter";
    case MetricType::kUntyped:
      return "untyped";
  }
  return "untyped";
}

}  // namespace kfleet

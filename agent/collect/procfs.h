// Parsers of the /proc files the agent samples, each turning a file's content into metric samples
// named, scaled and labelled exactly as node_exporter 1.5 does with its default flags, so that
// dashboards and alert rules made for node_exporter work on what kfleet re-exports.
//
// All parsers are pure functions of their input, safe to call from any thread, and bounded on
// hostile input: lines longer than kMaxLineBytes are skipped (except /proc/stat's `intr`, whose
// first number is all that is used), at most kMaxEntries fields, CPUs, devices or mounts are
// taken, and a malformed line is skipped without stopping the parse. A parser fails, with
// InvalidArgument naming the file and its first unusable line, only when it finds nothing usable
// at all. Samples are appended to `out`, never removed or reordered.
#ifndef KFLEET_AGENT_COLLECT_PROCFS_H_
#define KFLEET_AGENT_COLLECT_PROCFS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/collect/statfs.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

using MetricSamples = std::vector<kfleet::v1::MetricSample>;

inline constexpr size_t kMaxLineBytes = 4096;
inline constexpr size_t kMaxEntries = 4096;

// /proc/meminfo -> node_memory_<Field>_bytes for "kB" fields (x1024), node_memory_<Field> for
// counts (HugePages_Total), "Active(anon)" named Active_anon. Every field, gauges.
absl::Status ParseMeminfo(absl::string_view content, MetricSamples* out);

// /proc/vmstat -> node_vmstat_<field> for node_exporter's default fields
// (^(oom_kill|pgpg|pswp|pg.*fault).*: oom_kill, pgpgin, pgpgout, pswpin, pswpout, pgfault,
// pgmajfault). A file without any of them (no CONFIG_VM_EVENT_COUNTERS) is not an error.
absl::Status ParseVmstat(absl::string_view content, MetricSamples* out);

// The value of one /proc/vmstat field, e.g. "oom_kill" (present since Linux 4.13). NotFound if
// the file has no such field.
absl::StatusOr<uint64_t> ParseVmstatField(absl::string_view content, absl::string_view field);

// /proc/pressure/<resource>, resource one of "cpu", "memory", "io" ->
// node_pressure_<resource>_waiting_seconds_total ("some" line) and, for memory and io,
// node_pressure_<resource>_stalled_seconds_total ("full" line); total= is in microseconds. The
// "full" line of cpu (Linux 5.13+, always 0 system-wide) is ignored, as node_exporter 1.5 does.
absl::Status ParsePressure(absl::string_view resource, absl::string_view content,
                           MetricSamples* out);

// /proc/loadavg -> node_load1, node_load5, node_load15.
absl::Status ParseLoadavg(absl::string_view content, MetricSamples* out);

// /proc/stat -> node_cpu_seconds_total{cpu="N",mode=user|nice|system|idle|iowait|irq|softirq|
// steal} (ticks / `clock_ticks_per_second`, i.e. sysconf(_SC_CLK_TCK), which must be > 0),
// node_boot_time_seconds, node_context_switches_total, node_forks_total, node_intr_total,
// node_procs_running, node_procs_blocked.
absl::Status ParseStat(absl::string_view content, long clock_ticks_per_second, MetricSamples* out);

// /proc/diskstats -> node_disk_{reads_completed,reads_merged,read_bytes,read_time_seconds,
// writes_completed,writes_merged,written_bytes,write_time_seconds,io_time_seconds,
// io_time_weighted_seconds}_total and node_disk_io_now, labelled device. Devices matching
// node_exporter 1.5's default exclusion ^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$
// (RAM disks, loop devices, floppies, partitions) are left out.
absl::Status ParseDiskstats(absl::string_view content, MetricSamples* out);

// One line of /proc/mounts that node_exporter would report.
struct Mount {
  std::string device;
  std::string mount_point;  // unescaped: "\040" is a space again
  std::string fstype;
  bool read_only = false;  // the mount options include "ro"
};

// /proc/mounts (or /proc/self/mounts) -> the mounts node_exporter 1.5 reports by default: not of
// an excluded type (^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|
// hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|
// squashfs|sysfs|tracefs)$) nor under an excluded mount point (^/(dev|proc|run/credentials/.+|
// sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)), once per (device, mount point,
// type). An empty result is fine (everything excluded); an error means no line was readable.
absl::StatusOr<std::vector<Mount>> ParseMounts(absl::string_view content);

// node_filesystem_device_error for `mount`, then, if `stats` is OK, node_filesystem_{size,free,
// avail}_bytes, node_filesystem_files, node_filesystem_files_free and node_filesystem_readonly,
// labelled device, fstype, mountpoint.
void AppendFilesystemSamples(const Mount& mount, const absl::StatusOr<FsStats>& stats,
                             MetricSamples* out);

// /proc/sys/kernel/random/boot_id -> kfleet_host_boot_info{boot_id="..."} 1.
absl::Status ParseBootId(absl::string_view content, MetricSamples* out);

// node_time_seconds: `now` as Unix seconds.
void AppendTimeSample(absl::Time now, MetricSamples* out);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_COLLECT_PROCFS_H_

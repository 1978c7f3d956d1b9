// Samples the host's /proc (memory, vmstat including oom_kill, PSI, load, CPU, disks,
// filesystems, boot id) and uname(2) into node_exporter-compatible metric samples. No loop of its
// own: the agent's session calls Collect() at its sampling interval.
#ifndef KFLEET_AGENT_COLLECT_HOST_COLLECTOR_H_
#define KFLEET_AGENT_COLLECT_HOST_COLLECTOR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/collect/statfs.h"
#include "agent/collect/uname.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

// sysconf(_SC_CLK_TCK): the unit of /proc/stat's CPU times (USER_HZ, 100 on every Linux
// architecture in practice); 100 if sysconf fails.
long SystemClockTicks();

class HostCollector {
 public:
  using Clock = std::function<absl::Time()>;

  // Each file read is bounded by kMaxFileBytes; a longer file is cut at its last whole line.
  static constexpr size_t kMaxFileBytes = 1 << 20;

  // `root` is where the host's filesystem starts: "/" in production, a fixture directory laid out
  // as proc/meminfo, proc/pressure/memory, ... in tests. Mount points are statted at `root` +
  // mount point. `clock_ticks_per_second` must be > 0. `uname` gives node_uname_info (the
  // running kernel, whatever `root` is). `statfs`, `clock` and `uname` must be safe to call from
  // several threads if Collect is.
  explicit HostCollector(std::string root = "/", long clock_ticks_per_second = SystemClockTicks(),
                         StatFsFunc statfs = RealStatFs, Clock clock = absl::Now,
                         UnameFunc uname = RealUname);

  HostCollector(const HostCollector&) = delete;
  HostCollector& operator=(const HostCollector&) = delete;

  // One sample of every metric the host offers, node_time_seconds (from `clock`) first. Files a
  // kernel may lack (/proc/pressure/* without PSI or with psi=0, ...) or that cannot be read or
  // parsed are skipped, each logged once until it reads again; a filesystem whose statfs fails
  // gets node_filesystem_device_error 1; a failing uname leaves out node_uname_info. Errors: only
  // /proc/meminfo is required, and its read error (NotFound, ...) or parse error (InvalidArgument)
  // is returned. Thread-safe; blocks for as long as a statfs of a hung network filesystem does.
  absl::StatusOr<std::vector<kfleet::v1::MetricSample>> Collect();

  // The kernel's count of OOM kills since boot (/proc/vmstat oom_kill, Linux 4.13+), read alone so
  // that callers can poll it often and notice a kill quickly. NotFound if the kernel has no such
  // counter, or the read error of /proc/vmstat. Thread-safe.
  absl::StatusOr<uint64_t> OomKillCount();

 private:
  std::string Path(absl::string_view relative) const;
  // Logs `status` for `what` the first time it fails after having worked (or never worked).
  void ReportFailure(const std::string& what, const absl::Status& status);
  void ReportSuccess(const std::string& what);

  const std::string root_;
  const long clock_ticks_per_second_;
  const StatFsFunc statfs_;
  const Clock clock_;
  const UnameFunc uname_;

  absl::Mutex mu_;
  absl::flat_hash_set<std::string> failing_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_COLLECT_HOST_COLLECTOR_H_

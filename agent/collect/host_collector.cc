#include "agent/collect/host_collector.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/collect/procfs.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

// Reads at most `max_bytes` of `path`. A longer file is cut after its last '\n' within the limit,
// so that parsers see whole lines only.
absl::StatusOr<std::string> ReadBounded(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
  std::string out;
  char buf[65536];
  bool truncated = false;
  while (true) {
    // One byte past the limit tells a file of exactly max_bytes from a longer one.
    size_t want = std::min(sizeof buf, max_bytes + 1 - out.size());
    ssize_t n = ::read(fd, buf, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus(absl::StrCat("read ", path), err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      truncated = true;
      break;
    }
  }
  ::close(fd);
  if (truncated) {
    size_t last = out.rfind('\n', max_bytes - 1);
    out.resize(last == std::string::npos ? 0 : last + 1);
  }
  return out;
}

}  // namespace

long SystemClockTicks() {
  long ticks = ::sysconf(_SC_CLK_TCK);
  return ticks > 0 ? ticks : 100;
}

HostCollector::HostCollector(std::string root, long clock_ticks_per_second, StatFsFunc statfs,
                             Clock clock, UnameFunc uname)
    : root_(std::move(root)),
      clock_ticks_per_second_(clock_ticks_per_second),
      statfs_(std::move(statfs)),
      clock_(std::move(clock)),
      uname_(std::move(uname)) {}

std::string HostCollector::Path(absl::string_view relative) const {
  absl::ConsumePrefix(&relative, "/");
  if (absl::EndsWith(root_, "/")) return absl::StrCat(root_, relative);
  return absl::StrCat(root_, "/", relative);
}

void HostCollector::ReportFailure(const std::string& what, const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (!failing_.insert(what).second) return;
  }
  LogWarning(absl::StrCat("host metrics: skipping ", what, ": ", status.ToString()));
}

void HostCollector::ReportSuccess(const std::string& what) {
  absl::MutexLock lock(&mu_);
  failing_.erase(what);
}

absl::StatusOr<std::vector<kfleet::v1::MetricSample>> HostCollector::Collect() {
  MetricSamples out;
  AppendTimeSample(clock_(), &out);

  ASSIGN_OR_RETURN(std::string meminfo, ReadBounded(Path("proc/meminfo"), kMaxFileBytes));
  RETURN_IF_ERROR(ParseMeminfo(meminfo, &out));

  // Reads an optional file. A missing one is normal (older kernel, no PSI) and not logged; nor is
  // any error of a `quiet` one: /proc/pressure/* fails with EOPNOTSUPP when booted with psi=0.
  auto read = [&](const char* relative, bool quiet) -> std::optional<std::string> {
    absl::StatusOr<std::string> content = ReadBounded(Path(relative), kMaxFileBytes);
    if (content.ok()) return *std::move(content);
    if (!quiet && !absl::IsNotFound(content.status())) ReportFailure(relative, content.status());
    return std::nullopt;
  };
  auto parsed = [&](const char* relative, const absl::Status& status) {
    if (status.ok()) {
      ReportSuccess(relative);
    } else {
      ReportFailure(relative, status);
    }
  };

  if (auto vmstat = read("proc/vmstat", false)) {
    parsed("proc/vmstat", ParseVmstat(*vmstat, &out));
  }
  for (const char* resource : {"cpu", "memory", "io"}) {
    std::string relative = absl::StrCat("proc/pressure/", resource);
    if (auto pressure = read(relative.c_str(), true)) {
      parsed(relative.c_str(), ParsePressure(resource, *pressure, &out));
    }
  }
  if (auto loadavg = read("proc/loadavg", false)) {
    parsed("proc/loadavg", ParseLoadavg(*loadavg, &out));
  }
  if (auto stat = read("proc/stat", false)) {
    parsed("proc/stat", ParseStat(*stat, clock_ticks_per_second_, &out));
  }
  if (auto diskstats = read("proc/diskstats", false)) {
    parsed("proc/diskstats", ParseDiskstats(*diskstats, &out));
  }
  if (auto mounts_file = read("proc/mounts", false)) {
    absl::StatusOr<std::vector<Mount>> mounts = ParseMounts(*mounts_file);
    parsed("proc/mounts", mounts.status());
    if (mounts.ok()) {
      // node_exporter marks a failing filesystem with device_error rather than logging it.
      for (const Mount& m : *mounts) AppendFilesystemSamples(m, statfs_(Path(m.mount_point)), &out);
    }
  }
  if (auto boot_id = read("proc/sys/kernel/random/boot_id", false)) {
    parsed("proc/sys/kernel/random/boot_id", ParseBootId(*boot_id, &out));
  }
  absl::StatusOr<Uname> uname = uname_();
  parsed("uname", uname.status());
  if (uname.ok()) AppendUnameSample(*uname, &out);
  return out;
}

absl::StatusOr<uint64_t> HostCollector::OomKillCount() {
  ASSIGN_OR_RETURN(std::string vmstat, ReadBounded(Path("proc/vmstat"), kMaxFileBytes));
  return ParseVmstatField(vmstat, "oom_kill");
}

}  // namespace kfleet::agent

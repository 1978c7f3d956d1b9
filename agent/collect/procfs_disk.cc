// /proc/diskstats and /proc/mounts with the filesystem statistics.
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/collect/procfs.h"
#include "agent/collect/procfs_text.h"

namespace kfleet::agent {
namespace {

using procfs_internal::AddSample;
using procfs_internal::BadLines;
using procfs_internal::Fields;
using procfs_internal::ForEachLine;
using procfs_internal::IsLabelValue;
using procfs_internal::Line;
using procfs_internal::ParseU64;

// node_exporter's constants: sectors are always 512 bytes in /proc/diskstats (block/stat.rst),
// times are milliseconds.
constexpr double kSectorBytes = 512.0;
constexpr double kSecondsPerMs = 1.0 / 1000.0;

// The eleven /proc/diskstats columns after the device name every kernel since 2.6 prints, with
// the metric and the unit conversion of each.
struct DiskColumn {
  const char* metric;
  double scale;
};
constexpr DiskColumn kDiskColumns[] = {
    {"node_disk_reads_completed_total", 1},
    {"node_disk_reads_merged_total", 1},
    {"node_disk_read_bytes_total", kSectorBytes},
    {"node_disk_read_time_seconds_total", kSecondsPerMs},
    {"node_disk_writes_completed_total", 1},
    {"node_disk_writes_merged_total", 1},
    {"node_disk_written_bytes_total", kSectorBytes},
    {"node_disk_write_time_seconds_total", kSecondsPerMs},
    {"node_disk_io_now", 1},
    {"node_disk_io_time_seconds_total", kSecondsPerMs},
    {"node_disk_io_time_weighted_seconds_total", kSecondsPerMs},
};
constexpr size_t kNumDiskColumns = sizeof(kDiskColumns) / sizeof(kDiskColumns[0]);

bool ConsumeDigits(absl::string_view* s) {
  size_t n = 0;
  while (n < s->size() && (*s)[n] >= '0' && (*s)[n] <= '9') ++n;
  s->remove_prefix(n);
  return n > 0;
}

bool IsDigits(absl::string_view s) { return ConsumeDigits(&s) && s.empty(); }

// node_exporter 1.5's default --collector.diskstats.device-exclude:
// ^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$
bool IsExcludedDevice(absl::string_view name) {
  for (absl::string_view prefix : {"ram", "loop", "fd"}) {
    absl::string_view rest = name;
    if (absl::ConsumePrefix(&rest, prefix) && IsDigits(rest)) return true;
  }
  for (absl::string_view prefix : {"hd", "sd", "vd", "xvd"}) {
    absl::string_view rest = name;
    if (absl::ConsumePrefix(&rest, prefix) && rest.size() >= 2 && rest[0] >= 'a' &&
        rest[0] <= 'z' && IsDigits(rest.substr(1))) {
      return true;
    }
  }
  absl::string_view rest = name;
  return absl::ConsumePrefix(&rest, "nvme") && ConsumeDigits(&rest) &&
         absl::ConsumePrefix(&rest, "n") && ConsumeDigits(&rest) &&
         absl::ConsumePrefix(&rest, "p") && IsDigits(rest);
}

// node_exporter 1.5's default --collector.filesystem.fs-types-exclude.
bool IsExcludedFsType(absl::string_view type) {
  static constexpr absl::string_view kExcluded[] = {
      "autofs",     "binfmt_misc", "bpf",       "cgroup",   "cgroup2",   "configfs",
      "debugfs",    "devpts",      "devtmpfs",  "fusectl",  "hugetlbfs", "iso9660",
      "mqueue",     "nsfs",        "overlay",   "proc",     "procfs",    "pstore",
      "rpc_pipefs", "securityfs",  "selinuxfs", "squashfs", "sysfs",     "tracefs"};
  for (absl::string_view t : kExcluded) {
    if (type == t) return true;
  }
  return false;
}

// node_exporter 1.5's default --collector.filesystem.mount-points-exclude:
// ^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)
bool IsExcludedMountPoint(absl::string_view mp) {
  if (!absl::ConsumePrefix(&mp, "/")) return false;
  for (absl::string_view dir : {"dev", "proc", "sys"}) {
    absl::string_view rest = mp;
    if (absl::ConsumePrefix(&rest, dir) && (rest.empty() || rest[0] == '/')) return true;
  }
  // "X/.+($|/)": anything strictly below X.
  for (absl::string_view dir :
       {"run/credentials/", "var/lib/docker/", "var/lib/containers/storage/"}) {
    absl::string_view rest = mp;
    if (absl::ConsumePrefix(&rest, dir) && !rest.empty()) return true;
  }
  return false;
}

// The kernel writes ' ', '\t', '\n' and '\\' of a mount point as \040, \011, \012 and \134.
std::string UnescapeOctal(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && s.size() - i >= 4) {
      int v = 0;
      bool octal = true;
      for (size_t k = 1; k <= 3; ++k) {
        char c = s[i + k];
        octal = octal && c >= '0' && c <= '7';
        v = v * 8 + (c - '0');
      }
      if (octal && v <= 0xFF) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

absl::Status ParseDiskstats(absl::string_view content, MetricSamples* out) {
  BadLines bad;
  bool usable = false;
  absl::flat_hash_set<std::string> devices;
  ForEachLine(content, [&](const Line& line) {
    // major minor name, then 11 columns (15 on 4.18+ with discards, 17 on 5.5+ with flushes).
    std::vector<absl::string_view> f = Fields(line.text, 3 + kNumDiskColumns);
    uint64_t values[kNumDiskColumns];
    bool ok = !line.too_long && f.size() == 3 + kNumDiskColumns && IsDigits(f[0]) &&
              IsDigits(f[1]) && IsLabelValue(f[2]);
    for (size_t i = 0; ok && i < kNumDiskColumns; ++i) ok = ParseU64(f[3 + i], &values[i]);
    if (!ok) {
      bad.Note(line);
      return true;
    }
    usable = true;
    absl::string_view device = f[2];
    if (IsExcludedDevice(device) || !devices.insert(std::string(device)).second) return true;
    for (size_t i = 0; i < kNumDiskColumns; ++i) {
      kfleet::v1::MetricSample& s = AddSample(
          out, kDiskColumns[i].metric, static_cast<double>(values[i]) * kDiskColumns[i].scale);
      (*s.mutable_labels())["device"] = std::string(device);
    }
    return devices.size() < kMaxEntries;
  });
  if (!usable) {
    return bad.Error("/proc/diskstats",
                     "lines like \" 254 0 vda 9281 36 657034 2885 1846 1220 90354 1581 0 7072 "
                     "4466\"");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Mount>> ParseMounts(absl::string_view content) {
  BadLines bad;
  bool usable = false;
  std::vector<Mount> mounts;
  absl::flat_hash_set<std::string> seen;
  ForEachLine(content, [&](const Line& line) {
    // device mount_point fstype options dump pass
    std::vector<absl::string_view> f = Fields(line.text, 7);
    Mount m;
    bool ok = !line.too_long && f.size() >= 4;
    if (ok) {
      m.device = std::string(f[0]);
      m.mount_point = UnescapeOctal(f[1]);
      m.fstype = std::string(f[2]);
      ok = absl::StartsWith(m.mount_point, "/") && IsLabelValue(m.device) &&
           IsLabelValue(m.mount_point) && IsLabelValue(m.fstype);
    }
    if (!ok) {
      bad.Note(line);
      return true;
    }
    usable = true;
    if (IsExcludedFsType(m.fstype) || IsExcludedMountPoint(m.mount_point)) return true;
    // A mount point mounted over keeps its line; one series per labels, the first line wins.
    if (!seen.insert(absl::StrCat(m.device, "\n", m.mount_point, "\n", m.fstype)).second) {
      return true;
    }
    for (absl::string_view option : absl::StrSplit(f[3], ',')) {
      if (option == "ro") m.read_only = true;
    }
    mounts.push_back(std::move(m));
    return mounts.size() < kMaxEntries;
  });
  if (!usable) {
    return bad.Error("/proc/mounts", "lines like \"/dev/vda1 / ext4 rw,relatime 0 0\"");
  }
  return mounts;
}

void AppendFilesystemSamples(const Mount& mount, const absl::StatusOr<FsStats>& stats,
                             MetricSamples* out) {
  auto add = [&](const char* name, double value) {
    kfleet::v1::MetricSample& s = AddSample(out, name, value);
    auto& labels = *s.mutable_labels();
    labels["device"] = mount.device;
    labels["fstype"] = mount.fstype;
    labels["mountpoint"] = mount.mount_point;
  };
  add("node_filesystem_device_error", stats.ok() ? 0 : 1);
  if (!stats.ok()) return;
  // node_exporter multiplies in floating point, so huge values round instead of overflowing.
  const double block = static_cast<double>(stats->block_size);
  add("node_filesystem_size_bytes", static_cast<double>(stats->blocks) * block);
  add("node_filesystem_free_bytes", static_cast<double>(stats->blocks_free) * block);
  add("node_filesystem_avail_bytes", static_cast<double>(stats->blocks_avail) * block);
  add("node_filesystem_files", static_cast<double>(stats->files));
  add("node_filesystem_files_free", static_cast<double>(stats->files_free));
  add("node_filesystem_readonly", mount.read_only ? 1 : 0);
}

}  // namespace kfleet::agent

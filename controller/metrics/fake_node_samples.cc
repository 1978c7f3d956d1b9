#include "controller/metrics/fake_node_samples.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kfleet::controller {
namespace {

constexpr const char* kMeminfo[] = {
    "MemTotal",      "MemFree",        "MemAvailable",   "Buffers",       "Cached",
    "SwapCached",    "Active",         "Inactive",       "Active_anon",   "Inactive_anon",
    "Active_file",   "Inactive_file",  "Unevictable",    "Mlocked",       "SwapTotal",
    "SwapFree",      "Zswap",          "Zswapped",       "Dirty",         "Writeback",
    "AnonPages",     "Mapped",         "Shmem",          "KReclaimable",  "Slab",
    "SReclaimable",  "SUnreclaim",     "KernelStack",    "PageTables",    "SecPageTables",
    "NFS_Unstable",  "Bounce",         "WritebackTmp",   "CommitLimit",   "Committed_AS",
    "VmallocTotal",  "VmallocUsed",    "VmallocChunk",   "Percpu",        "HardwareCorrupted",
    "AnonHugePages", "ShmemHugePages", "ShmemPmdMapped", "FileHugePages", "FilePmdMapped",
    "Hugepagesize",  "Hugetlb",        "DirectMap4k",    "DirectMap2M",   "DirectMap1G"};
constexpr const char* kVmstat[] = {"oom_kill", "pgfault", "pgmajfault", "pgpgin",
                                   "pgpgout",  "pswpin",  "pswpout"};
constexpr const char* kPressure[] = {
    "node_pressure_cpu_waiting_seconds_total", "node_pressure_io_waiting_seconds_total",
    "node_pressure_io_stalled_seconds_total", "node_pressure_memory_waiting_seconds_total",
    "node_pressure_memory_stalled_seconds_total"};
constexpr const char* kCpuModes[] = {"idle",    "iowait", "irq",    "nice",
                                     "softirq", "steal",  "system", "user"};
constexpr const char* kDisk[] = {"reads_completed_total",
                                 "reads_merged_total",
                                 "read_bytes_total",
                                 "read_time_seconds_total",
                                 "writes_completed_total",
                                 "writes_merged_total",
                                 "written_bytes_total",
                                 "write_time_seconds_total",
                                 "io_now",
                                 "io_time_seconds_total",
                                 "io_time_weighted_seconds_total"};
constexpr const char* kFilesystem[] = {"size_bytes", "free_bytes", "avail_bytes",
                                       "files",      "files_free", "readonly"};

void Add(std::vector<v1::MetricSample>& out, std::string name, double value,
         std::map<std::string, std::string> labels = {}) {
  v1::MetricSample& sample = out.emplace_back();
  sample.set_name(std::move(name));
  sample.mutable_labels()->insert(labels.begin(), labels.end());
  sample.set_value(value);
}

}  // namespace

std::vector<v1::MetricSample> FakeNodeSamples(int host, int64_t round) {
  std::vector<v1::MetricSample> out;
  out.reserve(115);
  const double base = 1000.0 * (host + 1);
  const double t = static_cast<double>(round);
  int i = 0;
  for (const char* field : kMeminfo) {
    Add(out, absl::StrCat("node_memory_", field, "_bytes"), (base + ++i) * 4096.0);
  }
  i = 0;
  for (const char* field : kVmstat) Add(out, absl::StrCat("node_vmstat_", field), t * ++i);
  i = 0;
  for (const char* name : kPressure) Add(out, name, t * 0.25 * ++i);
  Add(out, "node_load1", 0.01 * (host % 400));
  Add(out, "node_load5", 0.02 * (host % 300));
  Add(out, "node_load15", 0.03 * (host % 200));
  for (int cpu = 0; cpu < 2; ++cpu) {
    i = 0;
    for (const char* mode : kCpuModes) {
      Add(out, "node_cpu_seconds_total", t * 1.5 * ++i,
          {{"cpu", absl::StrCat(cpu)}, {"mode", mode}});
    }
  }
  for (const char* device : {"vda", "vdb"}) {
    i = 0;
    for (const char* field : kDisk) {
      Add(out, absl::StrCat("node_disk_", field), t * ++i, {{"device", device}});
    }
  }
  struct Fs {
    const char* device;
    const char* fstype;
    const char* mountpoint;
  };
  for (const Fs& fs : {Fs{"/dev/vda1", "ext4", "/"}, Fs{"/dev/vdb", "xfs", "/mnt/test"}}) {
    i = 0;
    for (const char* field : kFilesystem) {
      Add(out, absl::StrCat("node_filesystem_", field), base * ++i,
          {{"device", fs.device}, {"fstype", fs.fstype}, {"mountpoint", fs.mountpoint}});
    }
  }
  return out;
}

std::string FakeHostName(int host) { return absl::StrFormat("guest-%04d", host); }

std::map<std::string, std::string> FakeHostLabels(int host) {
  return {{"pool", host % 2 == 0 ? "local" : "fstests"}, {"role", "guest"}};
}

}  // namespace kfleet::controller

#include "agent/collect/host_collector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "agent/collect/test_util.h"
#include "common/metric_names.h"

namespace kfleet::agent {
namespace {

using ::kfleet::agent::testing::CountNamed;
using ::kfleet::agent::testing::Labels;
using ::kfleet::agent::testing::LabelsOf;
using ::kfleet::agent::testing::TestdataPath;
using ::kfleet::agent::testing::ValueOf;
using ::testing::Optional;

const absl::Time kNow = absl::FromUnixSeconds(1732000000);

absl::Time FixedClock() { return kNow; }

absl::StatusOr<Uname> FixedUname() {
  return Uname{"Linux",  "6.1.0-27-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)",
               "x86_64", "tester",         "(none)"};
}

absl::StatusOr<Uname> NoUname() { return absl::PermissionDeniedError("uname: not here"); }

// A statvfs that knows the mount points of one root: 10 GiB filesystems, half free, except the
// mount points it is told to fail. Records the paths it was asked about.
class FakeStatFs {
 public:
  explicit FakeStatFs(std::string root) : root_(std::move(root)) {}

  void Fail(const std::string& mount_point) { failing_.insert(mount_point); }

  StatFsFunc Func() {
    return [this](const std::string& path) -> absl::StatusOr<FsStats> {
      absl::string_view mp = path;
      if (!absl::ConsumePrefix(&mp, root_)) return absl::NotFoundError(path);
      std::string mount_point = mp.empty() ? "/" : std::string(mp);
      {
        absl::MutexLock lock(&mu_);
        asked_.push_back(mount_point);
      }
      if (failing_.count(mount_point) != 0) return absl::PermissionDeniedError(path);
      FsStats st;
      st.block_size = 4096;
      st.blocks = 2621440;
      st.blocks_free = 1310720;
      st.blocks_avail = 1179648;
      st.files = 655360;
      st.files_free = 600000;
      return st;
    };
  }

  std::vector<std::string> asked() {
    absl::MutexLock lock(&mu_);
    return asked_;
  }

 private:
  const std::string root_;
  std::set<std::string> failing_;
  absl::Mutex mu_;
  std::vector<std::string> asked_ ABSL_GUARDED_BY(mu_);
};

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kfleet-collect-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

  void Write(const std::string& relative, const std::string& content) {
    std::filesystem::path p = std::filesystem::path(path_) / relative;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }

 private:
  std::string path_;
};

// The properties every Collect result must have: names kfleet knows, the label set the name
// table declares, and no series twice (Prometheus rejects a scrape with duplicates).
void ExpectWellFormed(const MetricSamples& samples) {
  std::set<std::pair<std::string, Labels>> series;
  for (const kfleet::v1::MetricSample& s : samples) {
    const MetricInfo* info = FindHostMetric(s.name());
    ASSERT_NE(info, nullptr) << "unknown metric " << s.name();
    std::vector<std::string> want;
    if (*info->labels != '\0') want = absl::StrSplit(info->labels, ',');
    std::vector<std::string> got;
    for (const auto& [key, value] : s.labels()) got.push_back(key);
    std::sort(want.begin(), want.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want) << s.name();
    EXPECT_TRUE(series.emplace(s.name(), LabelsOf(s)).second) << "duplicate " << s.name();
  }
}

// Validates a whole collection from each kernel's fixture: every sample known to the name table
// with its declared labels, no duplicate series, the injected time first.
TEST(HostCollectorTest, FixturesAreWellFormed) {
  for (const char* kernel : testing::kKernels) {
    SCOPED_TRACE(kernel);
    std::string root = TestdataPath(kernel);
    FakeStatFs statfs(root);
    HostCollector collector(root, 100, statfs.Func(), FixedClock, FixedUname);
    absl::StatusOr<MetricSamples> samples = collector.Collect();
    ASSERT_TRUE(samples.ok()) << samples.status();
    ASSERT_FALSE(samples->empty());
    EXPECT_EQ((*samples)[0].name(), "node_time_seconds");
    EXPECT_EQ((*samples)[0].value(), 1732000000.0);
    ExpectWellFormed(*samples);
    for (const char* name :
         {"node_memory_MemAvailable_bytes", "node_vmstat_oom_kill", "node_load1",
          "node_boot_time_seconds", "kfleet_host_boot_info", "node_filesystem_avail_bytes",
          "node_disk_read_bytes_total", "node_uname_info"}) {
      EXPECT_GE(CountNamed(*samples, name), 1) << name;
    }
  }
}

// Validates chosen values end to end on 6.1, including a filesystem through the fake statvfs.
TEST(HostCollectorTest, Linux61Values) {
  std::string root = TestdataPath("6.1");
  FakeStatFs statfs(root);
  HostCollector collector(root, 100, statfs.Func(), FixedClock);
  absl::StatusOr<MetricSamples> samples = collector.Collect();
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_THAT(ValueOf(*samples, "node_memory_MemAvailable_bytes"), Optional(13518520.0 * 1024));
  EXPECT_THAT(ValueOf(*samples, "node_vmstat_oom_kill"), Optional(17.0));
  EXPECT_THAT(ValueOf(*samples, "node_pressure_memory_stalled_seconds_total"),
              Optional(::testing::DoubleEq(0.234567)));
  EXPECT_THAT(ValueOf(*samples, "node_cpu_seconds_total", {{"cpu", "2"}, {"mode", "user"}}),
              Optional(::testing::DoubleEq(1234.56)));
  EXPECT_THAT(ValueOf(*samples, "node_disk_read_bytes_total", {{"device", "vda"}}),
              Optional(2048000.0 * 512));
  const Labels root_fs = {{"device", "/dev/vda1"}, {"fstype", "ext4"}, {"mountpoint", "/"}};
  EXPECT_THAT(ValueOf(*samples, "node_filesystem_size_bytes", root_fs), Optional(2621440.0 * 4096));
  EXPECT_THAT(ValueOf(*samples, "node_filesystem_avail_bytes", root_fs),
              Optional(1179648.0 * 4096));
  EXPECT_THAT(ValueOf(*samples, "node_filesystem_readonly", root_fs), Optional(0.0));
  EXPECT_THAT(statfs.asked(), ::testing::ElementsAre("/run", "/", "/run/lock", "/boot/efi",
                                                     "/var/lib/kfleet", "/run/user/1000"));
}

// Validates node_uname_info: uname's six fields as node_exporter's labels, value 1, once; a
// failing uname leaves it out and nothing else.
TEST(HostCollectorTest, UnameInfo) {
  std::string root = TestdataPath("6.1");
  FakeStatFs statfs(root);
  HostCollector collector(root, 100, statfs.Func(), FixedClock, FixedUname);
  absl::StatusOr<MetricSamples> samples = collector.Collect();
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(CountNamed(*samples, "node_uname_info"), 1);
  EXPECT_THAT(ValueOf(*samples, "node_uname_info",
                      {{"sysname", "Linux"},
                       {"release", "6.1.0-27-amd64"},
                       {"version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)"},
                       {"machine", "x86_64"},
                       {"nodename", "tester"},
                       {"domainname", "(none)"}}),
              Optional(1.0));

  HostCollector without(root, 100, statfs.Func(), FixedClock, NoUname);
  absl::StatusOr<MetricSamples> rest = without.Collect();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(CountNamed(*rest, "node_uname_info"), 0);
  EXPECT_EQ(rest->size(), samples->size() - 1);
}

// Validates that a kernel without PSI (4.19) is collected without pressure metrics or error.
TEST(HostCollectorTest, MissingPsiIsSkipped) {
  std::string root = TestdataPath("4.19");
  FakeStatFs statfs(root);
  HostCollector collector(root, 100, statfs.Func(), FixedClock);
  absl::StatusOr<MetricSamples> samples = collector.Collect();
  ASSERT_TRUE(samples.ok()) << samples.status();
  for (const auto& s : *samples) EXPECT_FALSE(absl::StartsWith(s.name(), "node_pressure_"));
  EXPECT_THAT(ValueOf(*samples, "node_vmstat_oom_kill"), Optional(3.0));
}

// Validates that a failing statvfs marks its filesystem with device_error and nothing else.
TEST(HostCollectorTest, StatFsFailureIsDeviceError) {
  std::string root = TestdataPath("6.1");
  FakeStatFs statfs(root);
  statfs.Fail("/boot/efi");
  HostCollector collector(root, 100, statfs.Func(), FixedClock);
  absl::StatusOr<MetricSamples> samples = collector.Collect();
  ASSERT_TRUE(samples.ok()) << samples.status();
  const Labels efi = {{"device", "/dev/vda15"}, {"fstype", "vfat"}, {"mountpoint", "/boot/efi"}};
  EXPECT_THAT(ValueOf(*samples, "node_filesystem_device_error", efi), Optional(1.0));
  EXPECT_EQ(ValueOf(*samples, "node_filesystem_size_bytes", efi), std::nullopt);
}

// Validates that only /proc/meminfo is required: without it Collect fails, with it alone it
// succeeds.
TEST(HostCollectorTest, OnlyMeminfoIsRequired) {
  TempDir dir;
  dir.Write("proc/vmstat", "oom_kill 1\n");
  HostCollector without(dir.path(), 100, RealStatFs, FixedClock, NoUname);
  absl::StatusOr<MetricSamples> samples = without.Collect();
  EXPECT_EQ(samples.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(samples.status().message(), "proc/meminfo"));

  dir.Write("proc/meminfo", "MemTotal: 1000 kB\n");
  dir.Write("proc/pressure/memory", "");  // empty: skipped, not fatal
  std::filesystem::create_directories(dir.path() + "/proc/pressure/io");  // unreadable as a file
  HostCollector with(dir.path(), 100, RealStatFs, FixedClock, NoUname);
  samples = with.Collect();
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(samples->size(), 3u);  // time, MemTotal, oom_kill
  EXPECT_THAT(ValueOf(*samples, "node_memory_MemTotal_bytes"), Optional(1024000.0));
}

// Validates that unusable meminfo is an InvalidArgument error, while unusable optional files are
// skipped.
TEST(HostCollectorTest, GarbageFiles) {
  TempDir dir;
  dir.Write("proc/meminfo", "this is not meminfo\n");
  HostCollector collector(dir.path(), 100, RealStatFs, FixedClock, NoUname);
  EXPECT_EQ(collector.Collect().status().code(), absl::StatusCode::kInvalidArgument);

  dir.Write("proc/meminfo", "MemFree: 5 kB\n");
  for (const char* f : {"proc/vmstat", "proc/loadavg", "proc/stat", "proc/diskstats", "proc/mounts",
                        "proc/pressure/cpu", "proc/sys/kernel/random/boot_id"}) {
    dir.Write(f, "\xff\xfe garbage \n\n\x01");
  }
  absl::StatusOr<MetricSamples> samples = collector.Collect();
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(samples->size(), 2u);
}

// Validates that a file over the read limit is cut at its last whole line, not rejected.
TEST(HostCollectorTest, OversizedFileIsCut) {
  TempDir dir;
  std::string meminfo = "MemTotal: 1000 kB\n";
  while (meminfo.size() <= HostCollector::kMaxFileBytes) {
    meminfo += absl::StrCat("Field", meminfo.size(), ": 1 kB\n");
  }
  meminfo += std::string(1 << 20, 'x');  // and an enormous last line
  dir.Write("proc/meminfo", meminfo);
  HostCollector collector(dir.path(), 100, RealStatFs, FixedClock, NoUname);
  absl::StatusOr<MetricSamples> samples = collector.Collect();
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_THAT(ValueOf(*samples, "node_memory_MemTotal_bytes"), Optional(1024000.0));
  EXPECT_EQ(samples->size(), 1 + kMaxEntries);  // time + the capped number of fields
}

// Validates OomKillCount on kernels with and without the counter.
TEST(HostCollectorTest, OomKillCount) {
  EXPECT_THAT(HostCollector(TestdataPath("4.19")).OomKillCount().value_or(0), 3u);
  EXPECT_THAT(HostCollector(TestdataPath("6.1")).OomKillCount().value_or(0), 17u);
  TempDir dir;
  HostCollector collector(dir.path());
  EXPECT_EQ(collector.OomKillCount().status().code(), absl::StatusCode::kNotFound);
  dir.Write("proc/vmstat", "pgfault 12\n");  // a 4.12 kernel
  EXPECT_EQ(collector.OomKillCount().status().code(), absl::StatusCode::kNotFound);
}

// Validates sane values from this machine's real /proc through the real statvfs and clock.
TEST(HostCollectorTest, RealProc) {
  HostCollector collector;
  absl::Time before = absl::Now();
  absl::StatusOr<MetricSamples> samples = collector.Collect();
  ASSERT_TRUE(samples.ok()) << samples.status();
  ExpectWellFormed(*samples);
  EXPECT_GT(ValueOf(*samples, "node_memory_MemTotal_bytes").value_or(0), 0);
  double boot = ValueOf(*samples, "node_boot_time_seconds").value_or(0);
  double now = absl::ToDoubleSeconds(before - absl::UnixEpoch());
  EXPECT_LE(boot, now);
  EXPECT_GT(boot, now - 366 * 24 * 3600);
  EXPECT_NEAR(ValueOf(*samples, "node_time_seconds").value_or(0), now, 60);
  EXPECT_GT(CountNamed(*samples, "node_cpu_seconds_total"), 0);
  EXPECT_EQ(CountNamed(*samples, "kfleet_host_boot_info"), 1);
  EXPECT_GE(ValueOf(*samples, "node_load1").value_or(-1), 0);
  // The release the kernel reports in /proc too.
  std::ifstream osrelease("/proc/sys/kernel/osrelease");
  std::string release;
  std::getline(osrelease, release);
  int unames = 0;
  for (const kfleet::v1::MetricSample& s : *samples) {
    if (s.name() != "node_uname_info") continue;
    ++unames;
    EXPECT_EQ(s.labels().at("release"), release);
    EXPECT_EQ(s.labels().at("sysname"), "Linux");
  }
  EXPECT_EQ(unames, 1);
  absl::StatusOr<uint64_t> ooms = collector.OomKillCount();
  ASSERT_TRUE(ooms.ok()) << ooms.status();  // every kernel kfleet supports has it (4.13+)
  // Read after Collect: a kill in between can only raise it.
  EXPECT_GE(static_cast<double>(*ooms), ValueOf(*samples, "node_vmstat_oom_kill").value_or(-1));
}

}  // namespace
}  // namespace kfleet::agent

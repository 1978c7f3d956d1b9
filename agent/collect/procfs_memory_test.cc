#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "agent/collect/procfs.h"
#include "agent/collect/test_util.h"

namespace kfleet::agent {
namespace {

using ::kfleet::agent::testing::CountNamed;
using ::kfleet::agent::testing::ReadFixture;
using ::kfleet::agent::testing::ValueOf;
using ::testing::DoubleEq;
using ::testing::HasSubstr;
using ::testing::Optional;

// Validates exact byte values, the "(anon)" renaming and unit-less fields on Linux 6.1.
TEST(ProcfsMeminfoTest, Linux61Values) {
  MetricSamples out;
  ASSERT_TRUE(ParseMeminfo(ReadFixture("6.1", "proc/meminfo"), &out).ok());
  EXPECT_THAT(ValueOf(out, "node_memory_MemAvailable_bytes"), Optional(13518520.0 * 1024));
  EXPECT_THAT(ValueOf(out, "node_memory_MemTotal_bytes"), Optional(16370916.0 * 1024));
  EXPECT_THAT(ValueOf(out, "node_memory_Active_anon_bytes"), Optional(286964.0 * 1024));
  EXPECT_THAT(ValueOf(out, "node_memory_Inactive_file_bytes"), Optional(749816.0 * 1024));
  EXPECT_THAT(ValueOf(out, "node_memory_HugePages_Total"), Optional(0.0));
  EXPECT_THAT(ValueOf(out, "node_memory_Hugepagesize_bytes"), Optional(2048.0 * 1024));
  EXPECT_THAT(ValueOf(out, "node_memory_VmallocTotal_bytes"), Optional(34359738367.0 * 1024));
  EXPECT_THAT(ValueOf(out, "node_memory_Zswap_bytes"), Optional(0.0));
  EXPECT_EQ(CountNamed(out, "node_memory_HugePages_Total_bytes"), 0);
}

// Validates that every field of every kernel is exported, and only the fields that kernel has:
// KReclaimable appeared in 4.20, FileHugePages in 5.4, Zswap in 5.19, SecPageTables in 6.3.
TEST(ProcfsMeminfoTest, FieldsFollowKernelVersion) {
  struct Case {
    const char* kernel;
    bool kreclaimable, filehuge, zswap, secpagetables;
  };
  for (const Case& c :
       {Case{"4.19", false, false, false, false}, Case{"5.10", true, true, false, false},
        Case{"6.1", true, true, true, false}, Case{"6.18", true, true, true, true}}) {
    SCOPED_TRACE(c.kernel);
    std::string content = ReadFixture(c.kernel, "proc/meminfo");
    MetricSamples out;
    ASSERT_TRUE(ParseMeminfo(content, &out).ok());
    EXPECT_EQ(out.size(), static_cast<size_t>(std::count(content.begin(), content.end(), '\n')));
    EXPECT_EQ(CountNamed(out, "node_memory_KReclaimable_bytes"), c.kreclaimable ? 1 : 0);
    EXPECT_EQ(CountNamed(out, "node_memory_FileHugePages_bytes"), c.filehuge ? 1 : 0);
    EXPECT_EQ(CountNamed(out, "node_memory_Zswap_bytes"), c.zswap ? 1 : 0);
    EXPECT_EQ(CountNamed(out, "node_memory_SecPageTables_bytes"), c.secpagetables ? 1 : 0);
    EXPECT_GT(*ValueOf(out, "node_memory_MemTotal_bytes"), 0);
  }
}

// Validates that malformed lines are skipped and the rest still parsed.
TEST(ProcfsMeminfoTest, SkipsMalformedLines) {
  MetricSamples out;
  ASSERT_TRUE(ParseMeminfo("MemTotal: 100 kB\n"
                           "garbage\n"
                           "MemFree: abc kB\n"
                           "Cached 12 kB\n"
                           "Weird(: 5 kB\n"
                           "Bad Name: 5 kB\n"
                           "Buffers: 7 MB\n"
                           "Dirty: nan kB\n"
                           "\n"
                           "MemTotal: 999 kB\n"
                           "MemAvailable:  50 kB",
                           &out)
                  .ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_THAT(ValueOf(out, "node_memory_MemTotal_bytes"), Optional(102400.0));  // first wins
  EXPECT_THAT(ValueOf(out, "node_memory_MemAvailable_bytes"), Optional(51200.0));
}

// Validates that a line longer than the limit is skipped rather than parsed.
TEST(ProcfsMeminfoTest, SkipsOversizedLines) {
  std::string content =
      "MemTotal: 100 kB\nMemFree: " + std::string(kMaxLineBytes, '1') + " kB\nCached: 3 kB\n";
  MetricSamples out;
  ASSERT_TRUE(ParseMeminfo(content, &out).ok());
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(CountNamed(out, "node_memory_MemFree_bytes"), 0);
}

// Validates the error when nothing is usable: InvalidArgument naming the file and line.
TEST(ProcfsMeminfoTest, GarbageIsAnError) {
  MetricSamples out;
  absl::Status status = ParseMeminfo("\x01\x02 hello\nworld\n", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("/proc/meminfo"));
  EXPECT_THAT(status.message(), HasSubstr("line 1"));
  EXPECT_TRUE(out.empty());

  status = ParseMeminfo("", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("empty"));
}

// Validates that a file cut in the middle of a line keeps its whole lines.
TEST(ProcfsMeminfoTest, TruncatedFile) {
  std::string content = ReadFixture("6.1", "proc/meminfo");
  content.resize(content.find("Buffers:") + 5);  // "MemTotal..MemAvailable\nBuffe"
  MetricSamples out;
  ASSERT_TRUE(ParseMeminfo(content, &out).ok());
  EXPECT_EQ(out.size(), 3u);
  EXPECT_THAT(ValueOf(out, "node_memory_MemAvailable_bytes"), Optional(13518520.0 * 1024));
}

// Validates oom_kill and the other default fields across kernels, and nothing else.
TEST(ProcfsVmstatTest, DefaultFieldsAcrossKernels) {
  struct Case {
    const char* kernel;
    double oom_kill;
  };
  for (const Case& c : {Case{"4.19", 3}, Case{"5.10", 0}, Case{"6.1", 17}}) {
    SCOPED_TRACE(c.kernel);
    MetricSamples out;
    ASSERT_TRUE(ParseVmstat(ReadFixture(c.kernel, "proc/vmstat"), &out).ok());
    EXPECT_THAT(ValueOf(out, "node_vmstat_oom_kill"), Optional(c.oom_kill));
    EXPECT_EQ(out.size(), 7u);
    for (const char* name :
         {"node_vmstat_pgpgin", "node_vmstat_pgpgout", "node_vmstat_pswpin", "node_vmstat_pswpout",
          "node_vmstat_pgfault", "node_vmstat_pgmajfault"}) {
      EXPECT_EQ(CountNamed(out, name), 1) << name;
    }
  }
  MetricSamples out;
  ASSERT_TRUE(ParseVmstat(ReadFixture("6.1", "proc/vmstat"), &out).ok());
  EXPECT_THAT(ValueOf(out, "node_vmstat_pgmajfault"), Optional(114321.0));
  EXPECT_THAT(ValueOf(out, "node_vmstat_pswpout"), Optional(4096.0));
}

// Validates that the regexp ^(oom_kill|pgpg|pswp|pg.*fault).* is applied as node_exporter does.
TEST(ProcfsVmstatTest, FieldFilterMatchesNodeExporter) {
  MetricSamples out;
  ASSERT_TRUE(ParseVmstat("pgfault 1\npgmajfault_s 2\npgfree 3\nthp_fault_alloc 4\n"
                          "oom_kill_extra 5\nnr_free_pages 6\npswpin 7\n",
                          &out)
                  .ok());
  EXPECT_EQ(out.size(), 4u);
  EXPECT_EQ(CountNamed(out, "node_vmstat_pgmajfault_s"), 1);
  EXPECT_EQ(CountNamed(out, "node_vmstat_oom_kill_extra"), 1);
  EXPECT_EQ(CountNamed(out, "node_vmstat_pgfree"), 0);
  EXPECT_EQ(CountNamed(out, "node_vmstat_thp_fault_alloc"), 0);
}

// Validates that a kernel without any default field (no VM event counters) is not an error, and
// that garbage is.
TEST(ProcfsVmstatTest, NoDefaultFieldsIsFineGarbageIsNot) {
  MetricSamples out;
  EXPECT_TRUE(ParseVmstat("nr_free_pages 12\n", &out).ok());
  EXPECT_TRUE(out.empty());
  absl::Status status = ParseVmstat("oom_kill -1\noom_kill\n", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("/proc/vmstat"));
}

// Validates reading one field, and NotFound on kernels before 4.13.
TEST(ProcfsVmstatTest, SingleField) {
  EXPECT_THAT(ParseVmstatField(ReadFixture("6.1", "proc/vmstat"), "oom_kill").value_or(0), 17u);
  EXPECT_EQ(ParseVmstatField("pgfault 5\npgmajfault 1\n", "oom_kill").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseVmstatField("oom_kill x\n", "oom_kill").status().code(),
            absl::StatusCode::kNotFound);
}

// Validates PSI totals converted from microseconds, "some" as waiting and "full" as stalled.
TEST(ProcfsPressureTest, Linux61Totals) {
  MetricSamples out;
  ASSERT_TRUE(ParsePressure("cpu", ReadFixture("6.1", "proc/pressure/cpu"), &out).ok());
  ASSERT_TRUE(ParsePressure("memory", ReadFixture("6.1", "proc/pressure/memory"), &out).ok());
  ASSERT_TRUE(ParsePressure("io", ReadFixture("6.1", "proc/pressure/io"), &out).ok());
  EXPECT_THAT(ValueOf(out, "node_pressure_cpu_waiting_seconds_total"),
              Optional(DoubleEq(7.654321)));
  EXPECT_THAT(ValueOf(out, "node_pressure_memory_waiting_seconds_total"),
              Optional(DoubleEq(1.234567)));
  EXPECT_THAT(ValueOf(out, "node_pressure_memory_stalled_seconds_total"),
              Optional(DoubleEq(0.234567)));
  EXPECT_THAT(ValueOf(out, "node_pressure_io_waiting_seconds_total"),
              Optional(DoubleEq(98.765432)));
  EXPECT_THAT(ValueOf(out, "node_pressure_io_stalled_seconds_total"),
              Optional(DoubleEq(87.654321)));
  // The cpu "full" line is there on 6.1 and ignored, as node_exporter 1.5 does.
  EXPECT_EQ(CountNamed(out, "node_pressure_cpu_stalled_seconds_total"), 0);
  EXPECT_EQ(out.size(), 5u);
}

// Validates 5.10, whose cpu file has no "full" line.
TEST(ProcfsPressureTest, Linux510CpuHasOnlySome) {
  MetricSamples out;
  ASSERT_TRUE(ParsePressure("cpu", ReadFixture("5.10", "proc/pressure/cpu"), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_THAT(ValueOf(out, "node_pressure_cpu_waiting_seconds_total"),
              Optional(DoubleEq(35.071123)));
}

// Validates malformed, truncated and unknown input.
TEST(ProcfsPressureTest, MalformedInput) {
  MetricSamples out;
  EXPECT_EQ(ParsePressure("gpu", "some total=1\n", &out).code(),
            absl::StatusCode::kInvalidArgument);
  // Cut before total=: nothing usable.
  absl::Status status = ParsePressure("memory", "some avg10=0.00 avg60=0.00 avg3", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("/proc/pressure/memory"));
  // A bad "some" line does not hide a good "full" one.
  ASSERT_TRUE(ParsePressure("io", "some total=-5\nfull total=2000000\n", &out).ok());
  EXPECT_THAT(ValueOf(out, "node_pressure_io_stalled_seconds_total"), Optional(2.0));
  EXPECT_EQ(CountNamed(out, "node_pressure_io_waiting_seconds_total"), 0);
}

}  // namespace
}  // namespace kfleet::agent

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
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

// Validates CPU seconds per cpu and mode (ticks / USER_HZ) and the single-number lines.
TEST(ProcfsStatTest, Linux61Values) {
  MetricSamples out;
  ASSERT_TRUE(ParseStat(ReadFixture("6.1", "proc/stat"), 100, &out).ok());
  EXPECT_THAT(ValueOf(out, "node_cpu_seconds_total", {{"cpu", "2"}, {"mode", "user"}}),
              Optional(DoubleEq(1234.56)));
  EXPECT_THAT(ValueOf(out, "node_cpu_seconds_total", {{"cpu", "2"}, {"mode", "idle"}}),
              Optional(DoubleEq(98765.43)));
  EXPECT_THAT(ValueOf(out, "node_cpu_seconds_total", {{"cpu", "2"}, {"mode", "steal"}}),
              Optional(DoubleEq(0.56)));
  EXPECT_EQ(CountNamed(out, "node_cpu_seconds_total"), 4 * 8);  // 4 CPUs, 8 modes, no total
  EXPECT_THAT(ValueOf(out, "node_boot_time_seconds"), Optional(1720000000.0));
  EXPECT_THAT(ValueOf(out, "node_context_switches_total"), Optional(48213377.0));
  EXPECT_THAT(ValueOf(out, "node_forks_total"), Optional(183320.0));
  EXPECT_THAT(ValueOf(out, "node_procs_running"), Optional(3.0));
  EXPECT_THAT(ValueOf(out, "node_procs_blocked"), Optional(1.0));
  EXPECT_EQ(CountNamed(out, "node_intr_total"), 1);
}

// Validates that the clock tick rate is honoured and must be positive.
TEST(ProcfsStatTest, ClockTicks) {
  MetricSamples out;
  ASSERT_TRUE(ParseStat("cpu0 250 0 0 1000 0 0 0 0 0 0\n", 250, &out).ok());
  EXPECT_THAT(ValueOf(out, "node_cpu_seconds_total", {{"cpu", "0"}, {"mode", "user"}}),
              Optional(1.0));
  EXPECT_EQ(ParseStat("cpu0 1 2 3 4\n", 0, &out).code(), absl::StatusCode::kInvalidArgument);
}

// Validates that every kernel's file parses with one series per CPU and mode.
TEST(ProcfsStatTest, AllKernels) {
  for (const char* kernel : testing::kKernels) {
    SCOPED_TRACE(kernel);
    MetricSamples out;
    ASSERT_TRUE(ParseStat(ReadFixture(kernel, "proc/stat"), 100, &out).ok());
    EXPECT_GT(CountNamed(out, "node_cpu_seconds_total"), 0);
    EXPECT_EQ(CountNamed(out, "node_cpu_seconds_total") % 8, 0);
    EXPECT_EQ(CountNamed(out, "node_boot_time_seconds"), 1);
  }
}

// Validates that an "intr" line of many kilobytes (thousands of IRQs) still gives its total,
// while other oversized lines are skipped.
TEST(ProcfsStatTest, LongIntrLine) {
  std::string intr = "intr 123456";
  while (intr.size() < 4 * kMaxLineBytes) intr += " 0";
  std::string cpu = "cpu1 1 2 3 4";
  while (cpu.size() < 2 * kMaxLineBytes) cpu += " 5";
  MetricSamples out;
  ASSERT_TRUE(ParseStat(absl::StrCat("cpu0 1 2 3 4 5 6 7 8 9 10\n", intr, "\n", cpu, "\nctxt 9\n"),
                        100, &out)
                  .ok());
  EXPECT_THAT(ValueOf(out, "node_intr_total"), Optional(123456.0));
  EXPECT_THAT(ValueOf(out, "node_context_switches_total"), Optional(9.0));
  EXPECT_EQ(CountNamed(out, "node_cpu_seconds_total"), 8);
}

// Validates that old kernels' short cpu lines give the modes they have, and garbage is skipped.
TEST(ProcfsStatTest, ShortAndMalformedCpuLines) {
  MetricSamples out;
  ASSERT_TRUE(ParseStat("cpu0 1 2 3 4\ncpu1 1 2 x 4\ncpuX 1 2 3 4\ncpu3 1 2\ncpu0 9 9 9 9\n"
                        "btime\nbtime -1\nbtime 77\n",
                        100, &out)
                  .ok());
  EXPECT_EQ(CountNamed(out, "node_cpu_seconds_total"), 4);
  EXPECT_THAT(ValueOf(out, "node_cpu_seconds_total", {{"cpu", "0"}, {"mode", "idle"}}),
              Optional(DoubleEq(0.04)));
  EXPECT_THAT(ValueOf(out, "node_boot_time_seconds"), Optional(77.0));
}

// Validates the error for a file with nothing usable.
TEST(ProcfsStatTest, GarbageIsAnError) {
  MetricSamples out;
  absl::Status status = ParseStat("cpu 1 2 3\nfoo bar\n", 100, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("/proc/stat"));
  EXPECT_THAT(status.message(), HasSubstr("line 2"));
}

// Validates the three load averages.
TEST(ProcfsLoadavgTest, Values) {
  MetricSamples out;
  ASSERT_TRUE(ParseLoadavg(ReadFixture("6.1", "proc/loadavg"), &out).ok());
  EXPECT_THAT(ValueOf(out, "node_load1"), Optional(DoubleEq(3.47)));
  EXPECT_THAT(ValueOf(out, "node_load5"), Optional(DoubleEq(2.91)));
  EXPECT_THAT(ValueOf(out, "node_load15"), Optional(DoubleEq(2.05)));
  EXPECT_EQ(out.size(), 3u);
}

// Validates truncated and malformed load averages.
TEST(ProcfsLoadavgTest, Malformed) {
  MetricSamples out;
  EXPECT_EQ(ParseLoadavg("0.52 0.5", &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseLoadavg("0.52 inf 0.1 1/2 3\n", &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseLoadavg("", &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(out.empty());
}

// Validates the boot id info metric, and that a non-UUID is refused.
TEST(ProcfsBootIdTest, Values) {
  MetricSamples out;
  ASSERT_TRUE(ParseBootId(ReadFixture("6.1", "proc/sys/kernel/random/boot_id"), &out).ok());
  EXPECT_THAT(
      ValueOf(out, "kfleet_host_boot_info", {{"boot_id", "e3b0c442-98fc-4c14-9afb-f4c8996fb924"}}),
      Optional(1.0));
  EXPECT_EQ(ParseBootId("not a uuid\n", &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseBootId("\n", &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseBootId(std::string(100, 'a'), &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.size(), 1u);
}

// Validates node_time_seconds from an injected time.
TEST(ProcfsTimeTest, UnixSeconds) {
  MetricSamples out;
  AppendTimeSample(absl::FromUnixMillis(1700000000250), &out);
  EXPECT_THAT(ValueOf(out, "node_time_seconds"), Optional(DoubleEq(1700000000.25)));
}

}  // namespace
}  // namespace kfleet::agent

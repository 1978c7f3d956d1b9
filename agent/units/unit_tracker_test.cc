#include "agent/units/unit_tracker.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kSecond = 1'000'000;
constexpr uint64_t kT0 = 1'800'000'000 * kSecond;  // some CLOCK_REALTIME time, in µs
constexpr char kUnit[] = "mbsync@small.service";
constexpr char kCgroup[] = "/system.slice/system-mbsync.slice/mbsync@small.service";

UnitSnapshot Snap(const std::string& state, const std::string& result, uint64_t start,
                  uint64_t exit, int32_t status = 0) {
  UnitSnapshot s;
  s.name = kUnit;
  s.active_state = state;
  s.result = result;
  s.exec_start_us = start;
  s.exec_exit_us = exit;
  s.exec_status = status;
  s.cgroup = kCgroup;
  s.timer = "mbsync@small.timer";
  s.timer_interval_us = 60 * kSecond;
  s.timer_last_trigger_us = start;
  return s;
}

// name{labels} -> value, the labels as k=v joined by ",".
std::map<std::string, double> ByKey(const std::vector<v1::MetricSample>& samples) {
  std::map<std::string, double> out;
  for (const v1::MetricSample& s : samples) {
    std::string key = s.name() + "{";
    std::map<std::string, std::string> labels(s.labels().begin(), s.labels().end());
    bool first = true;
    for (const auto& [k, v] : labels) {
      key += (first ? "" : ",") + k + "=" + v;
      first = false;
    }
    out[key + "}"] = s.value();
  }
  return out;
}

TEST(UnitTrackerTest, FirstSightIsHistoryNotARun) {
  UnitTracker t;
  ASSERT_TRUE(t.Observe(Snap("failed", "exit-code", kT0, kT0 + 2 * kSecond, 1)));
  EXPECT_TRUE(t.TakeSettledRuns(kT0 + 100 * kSecond).empty());
  auto m = ByKey(t.Samples());
  EXPECT_EQ(m.at("kfleet_unit_runs_total{result=exit-code,unit=mbsync@small.service}"), 0);
  EXPECT_EQ(m.at("kfleet_unit_runs_total{result=oom-kill,unit=mbsync@small.service}"), 0);
  EXPECT_EQ(m.count("kfleet_unit_runs_total{result=watchdog,unit=mbsync@small.service}"), 0u);
  EXPECT_EQ(m["kfleet_unit_last_result{result=exit-code,unit=mbsync@small.service}"], 1);
  EXPECT_DOUBLE_EQ(m["kfleet_unit_last_duration_seconds{unit=mbsync@small.service}"], 2);
  EXPECT_DOUBLE_EQ(m["kfleet_unit_timer_interval_seconds{unit=mbsync@small.service}"], 60);
}

TEST(UnitTrackerTest, ARunEndsWhenTheExitTimeMovesAndSettlesBeforeItCounts) {
  UnitTracker t;
  ASSERT_TRUE(t.Observe(Snap("inactive", "success", kT0, kT0 + kSecond)));
  // The next run starts: the exit time is the old one's, before the start.
  uint64_t start = kT0 + 61 * kSecond;
  t.Observe(Snap("activating", "success", start, kT0 + kSecond));
  EXPECT_EQ(t.RunningCgroups().count(kUnit), 1u);
  t.ObserveMemory(kUnit, 10 << 20);
  t.ObserveMemory(kUnit, 30 << 20);
  t.ObserveMemory(kUnit, 20 << 20);
  uint64_t end = start + 3 * kSecond;
  t.Observe(Snap("inactive", "success", start, end));
  EXPECT_TRUE(t.RunningCgroups().empty());
  // Seen again unchanged: still one run.
  t.Observe(Snap("inactive", "success", start, end));
  EXPECT_TRUE(t.TakeSettledRuns(end + kSecond).empty()) << "not settled yet";
  EXPECT_EQ(*t.NextSettleUs(), end + UnitTracker::kSettleUs);
  std::vector<UnitRun> runs = t.TakeSettledRuns(end + 2 * kSecond);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].result, "success");
  EXPECT_FALSE(runs[0].failed());
  EXPECT_EQ(runs[0].peak_memory_bytes, 30u << 20);
  EXPECT_FALSE(t.NextSettleUs().has_value());
  auto m = ByKey(t.Samples());
  EXPECT_EQ(m["kfleet_unit_runs_total{result=success,unit=mbsync@small.service}"], 1);
  EXPECT_DOUBLE_EQ(m["kfleet_unit_last_duration_seconds{unit=mbsync@small.service}"], 3);
  EXPECT_EQ(m["kfleet_unit_last_peak_memory_bytes{unit=mbsync@small.service}"], 30 << 20);
  EXPECT_EQ(m["kfleet_unit_active{unit=mbsync@small.service}"], 0);
}

TEST(UnitTrackerTest, AnOomKillInTheUnitsCgroupMakesItsRunAnOomKill) {
  UnitTracker t;
  ASSERT_TRUE(t.Observe(Snap("inactive", "success", kT0, kT0 + kSecond)));
  uint64_t start = kT0 + 61 * kSecond;
  t.Observe(Snap("activating", "success", start, kT0 + kSecond));
  // Not ours: another unit's cgroup, a prefix that is not a parent.
  EXPECT_EQ(t.AttributeOomKill("/system.slice/other.service", start + kSecond), "");
  EXPECT_EQ(t.AttributeOomKill(std::string(kCgroup) + "x", start + kSecond), "");
  t.ObserveMemory(kUnit, 1 << 20);  // read early in the run, before it grew
  EXPECT_EQ(t.AttributeOomKill(std::string(kCgroup) + "/child", start + kSecond, 23 << 20), kUnit);
  // systemd saw SIGKILL and says "signal"; the kernel's report says why.
  uint64_t end = start + 2 * kSecond;
  t.Observe(Snap("failed", "signal", start, end, 9));
  std::vector<UnitRun> runs = t.TakeSettledRuns(end + 2 * kSecond);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].result, "oom-kill");
  EXPECT_EQ(runs[0].oom_kills, 1u);
  EXPECT_EQ(runs[0].peak_memory_bytes, 23u << 20) << "at least what the victim held";
  v1::KernelEvent e = UnitFailedEvent(runs[0]);
  EXPECT_EQ(e.kind(), "unit_failed");
  EXPECT_EQ(e.unit(), kUnit);
  EXPECT_EQ(e.time_unix_ms(), static_cast<int64_t>(end / 1000));
  EXPECT_THAT(e.message(), HasSubstr("mbsync@small.service failed: oom-kill (1 OOM kill) after "
                                     "2.0s, memory peak 23.0 MiB"));
  auto m = ByKey(t.Samples());
  EXPECT_EQ(m["kfleet_unit_oom_kills_total{unit=mbsync@small.service}"], 1);
  EXPECT_EQ(m["kfleet_unit_runs_total{result=oom-kill,unit=mbsync@small.service}"], 1);
  EXPECT_EQ(m["kfleet_unit_last_result{result=oom-kill,unit=mbsync@small.service}"], 1);
  EXPECT_EQ(m.count("kfleet_unit_last_result{result=signal,unit=mbsync@small.service}"), 0u);

  // The next run, without a kill, is not blamed for the old one.
  uint64_t start2 = end + 60 * kSecond;
  t.Observe(Snap("activating", "success", start2, end));
  t.Observe(Snap("inactive", "success", start2, start2 + kSecond));
  runs = t.TakeSettledRuns(start2 + 5 * kSecond);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].result, "success");
  EXPECT_EQ(runs[0].oom_kills, 0u);
}

TEST(UnitTrackerTest, KillAfterTheUnitEndedIsFoundByItsCgroupName) {
  UnitTracker t;
  UnitSnapshot s = Snap("inactive", "success", kT0, kT0 + kSecond);
  s.cgroup = "";  // systemd clears ControlGroup once the unit is gone
  ASSERT_TRUE(t.Observe(s));
  EXPECT_EQ(t.AttributeOomKill(kCgroup, kT0), kUnit);
}

TEST(UnitTrackerTest, ExitCodeFailureNamesTheStatus) {
  UnitRun run{.unit = kUnit,
              .result = "exit-code",
              .exec_status = 3,
              .started_us = kT0,
              .ended_us = kT0 + 1500 * 1000,
              .peak_memory_bytes = 5 << 20};
  EXPECT_EQ(UnitFailedEvent(run).message(),
            "mbsync@small.service failed: exit-code (status 3) after 1.5s, memory peak 5.0 MiB");
}

TEST(UnitTrackerTest, ResultsAndUnitsAreBounded) {
  EXPECT_EQ(NormalizeUnitResult("oom-kill"), "oom-kill");
  EXPECT_EQ(NormalizeUnitResult("something-new"), "other");
  UnitTracker t(/*max_units=*/2);
  UnitSnapshot s = Snap("inactive", "", 0, 0);
  s.name = "a.service";
  EXPECT_TRUE(t.Observe(s));
  s.name = "b.service";
  EXPECT_TRUE(t.Observe(s));
  s.name = "c.service";
  EXPECT_FALSE(t.Observe(s));
  EXPECT_EQ(t.size(), 2u);
  EXPECT_FALSE(t.Watches("c.service"));
}

}  // namespace
}  // namespace kfleet::agent

#include "controller/schedule_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace kfleet::controller {
namespace {

using ::testing::ElementsAre;

std::map<std::string, std::string> Labels(const prometheus::ClientMetric& m) {
  std::map<std::string, std::string> out;
  for (const auto& l : m.label) out[l.name] = l.value;
  return out;
}

// Validates the families and series: four results per (schedule, host) from its first run on,
// the gauges only once a run ended, in seconds.
TEST(ScheduleCollectorTest, Families) {
  ScheduleRunStats hog{.schedule = "hog",
                       .host_id = "h-1",
                       .host_name = "mail",
                       .pass = 2,
                       .oom = 1,
                       .oom_kills = 3,
                       .last_end_ms = 1500,
                       .last_duration_ms = 250,
                       .last_peak_bytes = 32 << 20};
  ScheduleRunStats fresh{.schedule = "fresh", .host_id = "h-1", .host_name = "mail"};
  std::vector<prometheus::MetricFamily> families = ScheduleCollector::Families({hog, fresh});
  std::vector<std::string> names;
  for (const auto& f : families) names.push_back(f.name);
  EXPECT_THAT(names, ElementsAre("kfleet_schedule_last_duration_seconds",
                                 "kfleet_schedule_last_peak_memory_bytes",
                                 "kfleet_schedule_last_run_timestamp_seconds",
                                 "kfleet_schedule_oom_kills_total", "kfleet_schedule_runs_total"));
  const prometheus::MetricFamily& runs = families[4];
  EXPECT_EQ(runs.type, prometheus::MetricType::Counter);
  ASSERT_EQ(runs.metric.size(), 8u);
  std::map<std::string, double> hog_runs;
  for (const auto& m : runs.metric) {
    auto labels = Labels(m);
    EXPECT_EQ(labels["host"], "mail");
    if (labels["schedule"] == "hog") hog_runs[labels["result"]] = m.counter.value;
  }
  EXPECT_EQ(hog_runs,
            (std::map<std::string, double>{{"fail", 0}, {"oom", 1}, {"pass", 2}, {"timeout", 0}}));
  EXPECT_EQ(families[3].metric.size(), 2u);  // oom kills of both
  EXPECT_EQ(families[3].metric[0].counter.value, 3);
  ASSERT_EQ(families[2].metric.size(), 1u);  // only hog has ended a run
  EXPECT_EQ(families[2].type, prometheus::MetricType::Gauge);
  EXPECT_DOUBLE_EQ(families[2].metric[0].gauge.value, 1.5);
  EXPECT_DOUBLE_EQ(families[0].metric[0].gauge.value, 0.25);
  EXPECT_DOUBLE_EQ(families[1].metric[0].gauge.value, 32 << 20);
  EXPECT_TRUE(ScheduleCollector::Families({}).empty());
}

}  // namespace
}  // namespace kfleet::controller

#include "controller/metrics/self_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace kfleet::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Expose(const SelfMetrics& metrics) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& weak : metrics.Collectables()) {
    std::shared_ptr<prometheus::Collectable> collectable = weak.lock();
    if (collectable == nullptr) continue;
    for (auto& family : collectable->Collect()) families.push_back(std::move(family));
  }
  return prometheus::TextSerializer().Serialize(families);
}

// Validates that what the controller reports shows up under the documented names and labels.
TEST(SelfMetricsTest, EventDrivenMetrics) {
  SelfMetrics metrics(SelfMetricsOptions{});
  std::string empty = Expose(metrics);
  EXPECT_THAT(empty, HasSubstr("kfleet_events_total{kind=\"oom\"} 0\n"));
  EXPECT_THAT(empty, HasSubstr("kfleet_hosts{state=\"draining\"} 0\n"));
  EXPECT_THAT(empty, Not(HasSubstr("kfleet_commands"))) << "no callback, no family";

  metrics.SetAgentsConnected(3);
  metrics.SetHosts({{"online", 3}, {"offline", 1}});
  metrics.SetHosts({{"online", 2}, {"rebooting", 1}});
  metrics.ObserveDispatch(absl::Milliseconds(3));
  metrics.ObserveDispatch(absl::Seconds(-1));
  metrics.AddLogBytes(4096);
  metrics.AddOutboxReplays(2);
  metrics.ProviderOperation("libvirt", "create", true);
  metrics.ProviderOperation("libvirt", "create", false);
  metrics.ProviderOperation("libvirt", "create", false);
  metrics.EventStored("oom");
  metrics.EventStored("made_up_by_agent");
  metrics.AddResultsStored(7);

  std::string text = Expose(metrics);
  EXPECT_THAT(text, HasSubstr("kfleet_agents_connected 3\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_hosts{state=\"online\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_hosts{state=\"offline\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_hosts{state=\"rebooting\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE kfleet_dispatch_latency_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("kfleet_dispatch_latency_seconds_bucket{le=\"0.001\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_dispatch_latency_seconds_bucket{le=\"0.005\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_dispatch_latency_seconds_bucket{le=\"60\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_dispatch_latency_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_log_bytes_stored_total 4096\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_outbox_replays_total 2\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_results_stored_total 7\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_events_total{kind=\"oom\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_events_total{kind=\"other\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("made_up_by_agent")));
  EXPECT_THAT(text, HasSubstr("kfleet_provider_operations_total{op=\"create\",provider=\"libvirt\","
                              "result=\"error\"} 2\n"));
}

// Validates kfleet_test_results_total: every suite and status at 0 from the start (so that
// increase() counts the first result), counted by suite and status, an unknown suite as "other"
// and an unspecified status as "error"; kfleet_results_stored_total is AddResultsStored's alone.
TEST(SelfMetricsTest, TestResultsBySuiteAndStatus) {
  SelfMetrics metrics(SelfMetricsOptions{});
  std::string empty = Expose(metrics);
  for (const char* suite : {"kselftest", "fstests", "blktests", "exec", "other"}) {
    for (const char* status : {"pass", "fail", "skip", "error"}) {
      EXPECT_THAT(empty, HasSubstr(absl::StrCat("kfleet_test_results_total{status=\"", status,
                                                "\",suite=\"", suite, "\"} 0\n")));
    }
  }

  metrics.TestResultStored("exec", v1::TEST_PASS);
  metrics.TestResultStored("exec", v1::TEST_PASS);
  metrics.TestResultStored("fstests", v1::TEST_SKIP);
  metrics.TestResultStored("made_up_by_agent", v1::TEST_FAIL);
  metrics.TestResultStored("kselftest", v1::TEST_STATUS_UNSPECIFIED);
  metrics.TestResultStored("kselftest", static_cast<v1::TestStatus>(99));

  std::string text = Expose(metrics);
  EXPECT_THAT(text, HasSubstr("kfleet_test_results_total{status=\"pass\",suite=\"exec\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_test_results_total{status=\"skip\",suite=\"fstests\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_test_results_total{status=\"fail\",suite=\"other\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("kfleet_test_results_total{status=\"error\",suite=\"kselftest\"} 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("made_up_by_agent")));
  EXPECT_THAT(text, HasSubstr("kfleet_results_stored_total 0\n"));
}

// Validates the kind labels shared by kfleet_events_total and kfleet_kernel_events_total.
TEST(SelfMetricsTest, KernelEventKindLabels) {
  EXPECT_EQ(KernelEventKinds().size(), 10u);
  EXPECT_EQ(KernelEventKindLabel("oom"), "oom");
  EXPECT_EQ(KernelEventKindLabel("agent_killed"), "agent_killed");
  EXPECT_EQ(KernelEventKindLabel("made_up_by_agent"), "other");
  EXPECT_EQ(KernelEventKindLabel(""), "other");
}

// Validates that the store is asked at most once per TTL, and that its failure serves the last
// counts rather than dropping the series.
TEST(SelfMetricsTest, StateCountsCachedAtScrapeTime) {
  absl::Time now = absl::FromUnixSeconds(1000);
  int calls = 0;
  absl::Status fail;
  SelfMetricsOptions options;
  options.now = [&] { return now; };
  options.state_counts = [&]() -> absl::StatusOr<StateCounts> {
    ++calls;
    if (!fail.ok()) return fail;
    return StateCounts{{{"pending", calls}, {"queued_elsewhere", 1}}, {{"running", 1}}};
  };
  SelfMetrics metrics(options);

  std::string first = Expose(metrics);
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(first, HasSubstr("kfleet_commands{state=\"pending\"} 1\n"));
  EXPECT_THAT(first, HasSubstr("kfleet_commands{state=\"running\"} 0\n"));
  EXPECT_THAT(first, HasSubstr("kfleet_commands{state=\"queued_elsewhere\"} 1\n"));
  EXPECT_THAT(first, HasSubstr("kfleet_jobs{state=\"done\"} 0\n"));
  EXPECT_THAT(first, HasSubstr("kfleet_jobs{state=\"running\"} 1\n"));

  now += absl::Milliseconds(500);
  Expose(metrics);
  EXPECT_EQ(calls, 1);

  now += absl::Seconds(1);
  EXPECT_THAT(Expose(metrics), HasSubstr("kfleet_commands{state=\"pending\"} 2\n"));
  EXPECT_EQ(calls, 2);

  fail = absl::UnavailableError("database is locked");
  now += absl::Seconds(2);
  EXPECT_THAT(Expose(metrics), HasSubstr("kfleet_commands{state=\"pending\"} 2\n"));
  EXPECT_EQ(calls, 3);
}

// Validates the host sample gauges and drop counters read from the table.
TEST(SelfMetricsTest, HostSampleStats) {
  HostSampleTable table;
  v1::MetricSample good;
  good.set_name("node_load1");
  v1::MetricSample bad;
  bad.set_name("not_a_node_metric");
  table.Update("id-a", "guest-a", {}, 1000, {good, bad, bad});
  SelfMetricsOptions options;
  options.host_samples = &table;
  SelfMetrics metrics(options);
  std::string text = Expose(metrics);
  EXPECT_THAT(text, HasSubstr("kfleet_host_samples 1\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_metric_samples_dropped_total{reason=\"unknown_name\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("kfleet_metric_samples_dropped_total{reason=\"stale\"} 0\n"));
}

// Validates that the collectables handed to the server expire with the SelfMetrics.
TEST(SelfMetricsTest, CollectablesExpire) {
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables;
  {
    SelfMetrics metrics(SelfMetricsOptions{});
    collectables = metrics.Collectables();
    ASSERT_EQ(collectables.size(), 2u);
    EXPECT_FALSE(collectables[0].expired());
  }
  for (const auto& weak : collectables) EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace kfleet::controller

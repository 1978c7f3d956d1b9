#include "controller/metrics/host_samples.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace kfleet::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

v1::MetricSample Sample(const std::string& name, double value,
                        std::map<std::string, std::string> labels = {}) {
  v1::MetricSample sample;
  sample.set_name(name);
  sample.mutable_labels()->insert(labels.begin(), labels.end());
  sample.set_value(value);
  return sample;
}

uint64_t Dropped(const UpdateResult& result, DropReason reason) {
  return result.dropped[static_cast<size_t>(reason)];
}

const std::map<std::string, std::string> kLabels = {{"pool", "local"}, {"role", "guest"}};

// Validates that a batch becomes the latest, the one before it the previous, and that both are
// returned by id or name with the names filter applied.
TEST(HostSampleTableTest, LatestAndPreviousBatch) {
  HostSampleTable table;
  table.Update("id-a", "guest-a", kLabels, 1000,
               {Sample("node_load1", 0.5), Sample("node_memory_MemAvailable_bytes", 100)});
  UpdateResult result =
      table.Update("id-a", "guest-a", kLabels, 2000,
                   {Sample("node_load1", 0.7), Sample("node_memory_MemAvailable_bytes", 90)});
  EXPECT_EQ(result.kept, 2u);

  absl::StatusOr<v1::HostMetrics> by_name = table.Get("guest-a");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->host_id(), "id-a");
  EXPECT_EQ(by_name->time_unix_ms(), 2000);
  EXPECT_EQ(by_name->previous_time_unix_ms(), 1000);
  ASSERT_EQ(by_name->samples_size(), 2);
  EXPECT_EQ(by_name->samples(0).name(), "node_load1");
  EXPECT_EQ(by_name->samples(0).value(), 0.7);
  EXPECT_EQ(by_name->previous(0).value(), 0.5);

  absl::StatusOr<v1::HostMetrics> filtered = table.Get("id-a", {"node_memory_MemAvailable_bytes"});
  ASSERT_TRUE(filtered.ok());
  ASSERT_EQ(filtered->samples_size(), 1);
  EXPECT_EQ(filtered->samples(0).value(), 90);
  ASSERT_EQ(filtered->previous_size(), 1);

  absl::StatusOr<v1::HostMetrics> missing = table.Get("guest-z");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("guest-z"), absl::string_view::npos);
}

// Validates that each kind of bad sample is dropped and counted, and good ones kept.
TEST(HostSampleTableTest, DropsInvalidSamples) {
  SampleLimits limits;
  limits.max_labels_per_sample = 2;
  limits.max_label_value_bytes = 8;
  HostSampleTable table(limits);
  UpdateResult result =
      table.Update("id-a", "guest-a", kLabels, 1000,
                   {Sample("node_load1", 1), Sample("no_such_metric", 1),
                    Sample("node_disk_io_now", 1, {{"bad-name", "x"}}),
                    Sample("node_disk_io_now", 1, {{"__reserved", "x"}}),
                    Sample("node_disk_io_now", 1, {{"instance", "spoofed"}}),
                    Sample("node_disk_io_now", 1, {{"host", "spoofed"}}),
                    Sample("node_disk_io_now", 1, {{"device", "123456789"}}),
                    Sample("node_cpu_seconds_total", 1, {{"cpu", "0"}, {"mode", "user"}}),
                    Sample("node_cpu_seconds_total", 1, {{"a", "0"}, {"b", "1"}, {"c", "2"}}),
                    Sample("node_disk_io_now", 2, {{"device", "vda"}}),
                    Sample("node_disk_io_now", 3, {{"device", "vda"}})});
  EXPECT_EQ(result.kept, 3u);
  EXPECT_EQ(Dropped(result, DropReason::kUnknownName), 1u);
  EXPECT_EQ(Dropped(result, DropReason::kInvalidLabel), 2u);
  EXPECT_EQ(Dropped(result, DropReason::kReservedLabel), 2u);
  EXPECT_EQ(Dropped(result, DropReason::kLabelValueTooLong), 1u);
  EXPECT_EQ(Dropped(result, DropReason::kTooManyLabels), 1u);
  EXPECT_EQ(Dropped(result, DropReason::kDuplicate), 1u);

  absl::StatusOr<v1::HostMetrics> held = table.Get("id-a", {"node_disk_io_now"});
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->samples_size(), 1);
  EXPECT_EQ(held->samples(0).value(), 2) << "the first of two duplicates is kept";

  HostSampleTable::Stats stats = table.GetStats();
  EXPECT_EQ(stats.series, 3u);
  EXPECT_EQ(stats.dropped[static_cast<size_t>(DropReason::kInvalidLabel)], 2u);
}

// Validates that the per-host cap keeps the first samples in the agent's order.
TEST(HostSampleTableTest, CapsSamplesPerHost) {
  SampleLimits limits;
  limits.max_samples_per_host = 3;
  HostSampleTable table(limits);
  std::vector<v1::MetricSample> batch;
  for (int i = 0; i < 10; ++i) {
    batch.push_back(Sample("node_disk_io_now", i, {{"device", absl::StrCat("vd", 9 - i)}}));
  }
  UpdateResult result = table.Update("id-a", "guest-a", {}, 1000, batch);
  EXPECT_EQ(result.kept, 3u);
  EXPECT_EQ(Dropped(result, DropReason::kTooManySamples), 7u);
  absl::StatusOr<v1::HostMetrics> held = table.Get("id-a");
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->samples_size(), 3);
  EXPECT_EQ(held->samples(0).labels().at("device"), "vd7");  // sorted, of the first three sent
  EXPECT_EQ(held->samples(2).labels().at("device"), "vd9");
}

// Validates that a replayed or reordered batch does not replace a newer one, while a clock that
// stepped far back is followed.
TEST(HostSampleTableTest, StaleBatchesAndClockSteps) {
  HostSampleTable table;
  table.Update("id-a", "guest-a", {}, 100'000'000, {Sample("node_load1", 1)});
  table.Update("id-a", "guest-a", {}, 100'010'000, {Sample("node_load1", 2)});

  UpdateResult replay = table.Update("id-a", "guest-a", {}, 100'010'000, {Sample("node_load1", 9)});
  EXPECT_EQ(replay.kept, 0u);
  EXPECT_EQ(Dropped(replay, DropReason::kStale), 1u);
  UpdateResult reordered =
      table.Update("id-a", "guest-a", {}, 100'005'000, {Sample("node_load1", 9)});
  EXPECT_EQ(Dropped(reordered, DropReason::kStale), 1u);
  EXPECT_EQ(table.Get("id-a")->samples(0).value(), 2);
  EXPECT_EQ(table.Get("id-a")->previous(0).value(), 1);

  const int64_t stepped = 100'010'000 - HostSampleTable::kClockStepMs - 1;
  UpdateResult step = table.Update("id-a", "guest-a", {}, stepped, {Sample("node_load1", 3)});
  EXPECT_EQ(step.kept, 1u);
  absl::StatusOr<v1::HostMetrics> held = table.Get("id-a");
  EXPECT_EQ(held->time_unix_ms(), stepped);
  EXPECT_EQ(held->samples(0).value(), 3);
  EXPECT_EQ(held->previous_size(), 0) << "no rate across a clock step";
  EXPECT_EQ(held->previous_time_unix_ms(), 0);
}

// Validates that removing a host drops its series and that relabelling reaches the views.
TEST(HostSampleTableTest, RemoveAndRelabel) {
  HostSampleTable table;
  table.Update("id-b", "guest-b", kLabels, 1000,
               {Sample("node_load1", 1), Sample("node_load5", 1)});
  table.Update("id-a", "guest-a", kLabels, 1000, {Sample("node_load1", 1)});
  EXPECT_EQ(table.GetStats().series, 3u);
  EXPECT_EQ(table.GetStats().hosts, 2u);

  std::vector<v1::HostMetrics> all = table.Snapshot();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].host_name(), "guest-a");
  EXPECT_EQ(all[1].host_name(), "guest-b");

  table.SetHostLabels("id-a", "guest-a2", {{"pool", "big"}});
  table.SetHostLabels("id-unknown", "nobody", {});  // no samples: nothing to relabel
  std::vector<HostSamplesView> views = table.Views();
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].host->name, "guest-a2");
  EXPECT_THAT(
      views[0].host->target_labels,
      ElementsAre(Pair("host", "guest-a2"), Pair("instance", "guest-a2"), Pair("pool", "big")));

  table.Remove("id-b");
  table.Remove("id-b");
  EXPECT_EQ(table.GetStats().series, 1u);
  EXPECT_EQ(table.GetStats().hosts, 1u);
  EXPECT_EQ(table.Get("guest-b").status().code(), absl::StatusCode::kNotFound);
}

// Validates that a host without a name is exported under its id rather than with empty labels.
TEST(HostSampleTableTest, NamelessHostUsesId) {
  HostSampleTable table;
  table.Update("id-a", "", {}, 1000, {Sample("node_load1", 1)});
  EXPECT_EQ(table.Views().at(0).host->name, "id-a");
}

}  // namespace
}  // namespace kfleet::controller

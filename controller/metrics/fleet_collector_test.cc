#include "controller/metrics/fleet_collector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "controller/metrics/fake_node_samples.h"
#include "controller/metrics/self_metrics.h"
#include "prometheus/text_serializer.h"

namespace kfleet::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::MetricSample Sample(const std::string& name, double value,
                        std::map<std::string, std::string> labels = {}) {
  v1::MetricSample sample;
  sample.set_name(name);
  sample.mutable_labels()->insert(labels.begin(), labels.end());
  sample.set_value(value);
  return sample;
}

std::string Expose(const prometheus::Collectable& collectable) {
  return prometheus::TextSerializer().Serialize(collectable.Collect());
}

int CountLines(const std::string& text, absl::string_view prefix) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) n += absl::StartsWith(line, prefix);
  return n;
}

void AddHost(HostSampleTable& table, const std::string& name,
             std::map<std::string, std::string> labels) {
  table.Update("id-" + name, name, labels, 1000,
               {Sample("node_load1", 0.5), Sample("node_memory_MemAvailable_bytes", 1e9),
                Sample("node_vmstat_oom_kill", 2),
                Sample("node_cpu_seconds_total", 10, {{"cpu", "0"}, {"mode", "user"}}),
                Sample("node_cpu_seconds_total", 20, {{"cpu", "0"}, {"mode", "system"}})});
}

// Validates one block per metric name across hosts, each series naming its host, host labels
// and sample labels, and that a removed host's series are gone.
TEST(FleetCollectorTest, OneFamilyPerNameAcrossHosts) {
  HostSampleTable table;
  AddHost(table, "guest-c", {{"pool", "local"}, {"role", "guest"}});
  AddHost(table, "guest-a", {{"pool", "local"}, {"role", "guest"}});
  AddHost(table, "mail", {{"role", "mail"}});
  FleetCollector collector(table);
  std::string text = Expose(collector);

  for (const char* name : {"node_load1", "node_memory_MemAvailable_bytes", "node_vmstat_oom_kill",
                           "node_cpu_seconds_total"}) {
    EXPECT_EQ(CountLines(text, absl::StrCat("# TYPE ", name, " ")), 1) << name << "\n" << text;
    EXPECT_EQ(CountLines(text, absl::StrCat("# HELP ", name, " ")), 1) << name;
  }
  EXPECT_EQ(CountLines(text, "node_load1{"), 3);
  EXPECT_EQ(CountLines(text, "node_cpu_seconds_total{"), 6);
  EXPECT_THAT(text, HasSubstr("# TYPE node_load1 gauge"));
  EXPECT_THAT(text, HasSubstr("# TYPE node_cpu_seconds_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE node_vmstat_oom_kill untyped"))
      << "a counter without _total is written as node_exporter writes it";
  EXPECT_THAT(text, HasSubstr("node_load1{host=\"guest-a\",instance=\"guest-a\",pool=\"local\","
                              "role=\"guest\"} 0.5\n"));
  EXPECT_THAT(text, HasSubstr("node_cpu_seconds_total{cpu=\"0\",host=\"mail\",instance=\"mail\","
                              "mode=\"system\",role=\"mail\"} 20\n"));
  // Sorted by host name within a family; families sorted by name; no timestamps.
  EXPECT_LT(text.find("node_load1{host=\"guest-a\""), text.find("node_load1{host=\"guest-c\""));
  EXPECT_LT(text.find("# TYPE node_cpu_seconds_total"), text.find("# TYPE node_load1"));
  EXPECT_THAT(text, Not(HasSubstr("} 0.5 ")));

  table.Remove("id-guest-c");
  std::string after = Expose(collector);
  EXPECT_THAT(after, Not(HasSubstr("guest-c")));
  EXPECT_EQ(CountLines(after, "node_load1{"), 2);
  EXPECT_EQ(after, Expose(collector)) << "deterministic";
}

// Validates that a sample label wins over a host label of the same name.
TEST(FleetCollectorTest, SampleLabelWinsOverHostLabel) {
  HostSampleTable table;
  table.Update("id-a", "guest-a", {{"device", "host-level"}, {"zone", "z1"}}, 1000,
               {Sample("node_disk_io_now", 1, {{"device", "vda"}}), Sample("node_load1", 2)});
  std::string text = Expose(FleetCollector(table));
  EXPECT_THAT(text, HasSubstr("node_disk_io_now{device=\"vda\",host=\"guest-a\","
                              "instance=\"guest-a\",zone=\"z1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("node_load1{device=\"host-level\",host=\"guest-a\","
                              "instance=\"guest-a\",zone=\"z1\"} 2\n"));
}

// Validates that two hosts claiming one name do not produce duplicate series.
TEST(FleetCollectorTest, DuplicateHostNameExportedOnce) {
  HostSampleTable table;
  table.Update("id-2", "guest-a", {}, 1000, {Sample("node_load1", 2)});
  table.Update("id-1", "guest-a", {}, 1000, {Sample("node_load1", 1)});
  std::string text = Expose(FleetCollector(table));
  EXPECT_EQ(CountLines(text, "node_load1{"), 1) << text;
  EXPECT_THAT(text, HasSubstr("node_load1{host=\"guest-a\",instance=\"guest-a\"} 1\n"));
}

// Validates that an empty table exposes nothing (not empty families).
TEST(FleetCollectorTest, EmptyTable) {
  HostSampleTable table;
  EXPECT_TRUE(FleetCollector(table).Collect().empty());
}

// The promtool binary: $KFLEET_PROMTOOL, else promtool in PATH; empty if none.
std::string FindPromtool() {
  if (const char* env = getenv("KFLEET_PROMTOOL")) return env;
  const char* path = getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin", ':')) {
    std::string candidate = absl::StrCat(dir, "/promtool");
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Validates that Prometheus' own linter accepts the exposition of a realistic fleet plus the
// self-metrics. node_exporter's names break its camelCase rule, so the findings on them are
// filtered out exactly as node_exporter's checkmetrics.sh does.
TEST(FleetCollectorTest, PromtoolAcceptsRealisticFleet) {
  std::string promtool = FindPromtool();
  if (promtool.empty()) GTEST_SKIP() << "promtool not found (Debian package prometheus)";

  HostSampleTable table;
  for (int host = 0; host < 20; ++host) {
    table.Update(absl::StrCat("id-", host), FakeHostName(host), FakeHostLabels(host), 1000,
                 FakeNodeSamples(host, 3));
  }
  SelfMetricsOptions options;
  options.host_samples = &table;
  options.state_counts = [] { return StateCounts{{{"running", 2}}, {{"running", 1}}}; };
  SelfMetrics self(options);
  self.ObserveDispatch(absl::Milliseconds(30));
  self.EventStored("oom");
  self.ProviderOperation("libvirt", "create", true);
  std::vector<prometheus::MetricFamily> families = FleetCollector(table).Collect();
  for (const auto& weak : self.Collectables()) {
    for (auto& family : weak.lock()->Collect()) families.push_back(std::move(family));
  }
  std::string text = prometheus::TextSerializer().Serialize(families);

  char tmpl[] = "/tmp/kfleet-promtool-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(tmpl) << text;
  std::string command = absl::StrCat(promtool, " check metrics < ", tmpl, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  pclose(pipe);
  unlink(tmpl);

  std::string findings;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    // checkmetrics.sh: grep -v -E "^node_(entropy|memory|netstat|wifi_station)_"
    if (absl::StartsWith(line, "node_memory_") || absl::StartsWith(line, "node_entropy_") ||
        absl::StartsWith(line, "node_netstat_") || absl::StartsWith(line, "node_wifi_station_")) {
      continue;
    }
    absl::StrAppend(&findings, line, "\n");
  }
  EXPECT_EQ(findings, "") << "promtool check metrics:\n" << output;
  EXPECT_THAT(output, HasSubstr("camelCase")) << "the filter above has nothing to filter";
}

}  // namespace
}  // namespace kfleet::controller

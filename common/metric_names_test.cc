#include "common/metric_names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace kfleet {
namespace {

// Prometheus' metric name syntax: [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsPrometheusName(absl::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) return false;
  }
  return true;
}

// Validates that every entry of the table has a valid, unique name, help text and label list.
TEST(MetricNamesTest, TableEntriesAreValidAndUnique) {
  std::set<std::string> seen;
  ASSERT_FALSE(HostMetrics().empty());
  for (const MetricInfo& m : HostMetrics()) {
    EXPECT_TRUE(IsPrometheusName(m.name)) << m.name;
    EXPECT_TRUE(seen.insert(m.name).second) << "duplicate " << m.name;
    EXPECT_NE(std::string(m.help), "") << m.name;
    absl::string_view labels = m.labels;
    if (!labels.empty()) {
      for (absl::string_view label : absl::StrSplit(labels, ',')) {
        EXPECT_TRUE(IsPrometheusName(label) && label.find(':') == absl::string_view::npos)
            << m.name << " label \"" << label << "\"";
      }
    }
    EXPECT_EQ(FindHostMetric(m.name), &m) << m.name;
    EXPECT_EQ(HostMetricHelp(m.name), m.help);
  }
}

// Validates that counters follow the _total convention, the one exception being node_exporter's
// untyped vmstat fields.
TEST(MetricNamesTest, CountersEndInTotal) {
  for (const MetricInfo& m : HostMetrics()) {
    if (m.type == MetricType::kCounter) {
      EXPECT_TRUE(absl::EndsWith(m.name, "_total")) << m.name;
    }
  }
}

// Validates the node_exporter types and labels of the metrics alert rules rely on most.
TEST(MetricNamesTest, KeyEntriesMatchNodeExporter) {
  const MetricInfo* oom = FindHostMetric("node_vmstat_oom_kill");
  ASSERT_NE(oom, nullptr);
  EXPECT_EQ(oom->type, MetricType::kUntyped);
  EXPECT_STREQ(oom->name, "node_vmstat_oom_kill");

  const MetricInfo* cpu = FindHostMetric("node_cpu_seconds_total");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->type, MetricType::kCounter);
  EXPECT_STREQ(cpu->labels, "cpu,mode");

  const MetricInfo* avail = FindHostMetric("node_filesystem_avail_bytes");
  ASSERT_NE(avail, nullptr);
  EXPECT_STREQ(avail->labels, "device,fstype,mountpoint");
  EXPECT_EQ(avail->type, MetricType::kGauge);

  // Node Exporter Full's job and node variables list node_uname_info's.
  const MetricInfo* uname = FindHostMetric("node_uname_info");
  ASSERT_NE(uname, nullptr);
  EXPECT_EQ(uname->type, MetricType::kGauge);
  EXPECT_STREQ(uname->labels, "sysname,release,version,machine,nodename,domainname");
}

// Validates that any meminfo field is accepted the way node_exporter names it, with its help.
TEST(MetricNamesTest, MemoryFamilyAcceptsAnyField) {
  const MetricInfo* bytes = FindHostMetric("node_memory_Active_anon_bytes");
  ASSERT_NE(bytes, nullptr);
  EXPECT_EQ(bytes->type, MetricType::kGauge);
  EXPECT_STREQ(bytes->name, "node_memory_<Field>_bytes");
  EXPECT_EQ(HostMetricHelp("node_memory_Active_anon_bytes"),
            "Memory information field Active_anon_bytes.");

  const MetricInfo* count = FindHostMetric("node_memory_HugePages_Rsvd");
  ASSERT_NE(count, nullptr);
  EXPECT_EQ(count->type, MetricType::kGauge);
  EXPECT_EQ(HostMetricHelp("node_memory_HugePages_Rsvd"),
            "Memory information field HugePages_Rsvd.");
  // The same static entry every time.
  EXPECT_EQ(FindHostMetric("node_memory_Zswap_bytes"), bytes);
}

// Validates that any vmstat field is accepted as untyped with node_exporter's help.
TEST(MetricNamesTest, VmstatFamilyAcceptsAnyField) {
  const MetricInfo* m = FindHostMetric("node_vmstat_pgsteal_kswapd");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->type, MetricType::kUntyped);
  EXPECT_EQ(HostMetricHelp("node_vmstat_pgsteal_kswapd"),
            "/proc/vmstat information field pgsteal_kswapd.");
}

// Validates that unknown and malformed names are refused.
TEST(MetricNamesTest, UnknownNamesAreRefused) {
  for (absl::string_view name :
       {"", "node_", "node_memory_", "node_memory__bytes", "node_memory_Mem Free_bytes",
        "node_memory_MemFree_bytes{x=\"1\"}", "node_vmstat_", "node_vmstat_oom-kill",
        "node_network_receive_bytes_total", "kfleet_unknown", "NODE_LOAD1", "node_load1 "}) {
    EXPECT_EQ(FindHostMetric(name), nullptr) << name;
    EXPECT_EQ(HostMetricHelp(name), "") << name;
  }
}

// Validates the names written on `# TYPE` lines.
TEST(MetricNamesTest, TypeNames) {
  EXPECT_EQ(MetricTypeName(MetricType::kGauge), "gauge");
  EXPECT_EQ(MetricTypeName(MetricType::kCounter), "counter");
  EXPECT_EQ(MetricTypeName(MetricType::kUntyped), "untyped");
}

}  // namespace
}  // namespace kfleet

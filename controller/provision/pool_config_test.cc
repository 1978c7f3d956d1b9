#include "controller/provision/pool_config.h"

#include <gtest/gtest.h>

namespace kfleet::controller::provision {
namespace {

// Validates that a full pool declaration parses with units, and the pool label is added.
TEST(PoolConfigTest, ParsesPools) {
  auto pools = ParsePoolConfig(R"(
pools:
  local:
    provider: libvirt
    domain_prefix: ci7-
    image: tiny
    cpus: 2
    memory: 1G
    disks: [{name: test, size: 4G}, {name: scratch, size: 512M}]
    min: 1
    max: 3
    idle_timeout: 90s
    labels: {role: guest}
  cloud:
    provider: exec
    exec: {create: ./up.sh, destroy: ./down.sh}
)",
                               "kfleet.yaml");
  ASSERT_TRUE(pools.ok()) << pools.status();
  ASSERT_EQ(pools->size(), 2u);
  const PoolConfig& p = (*pools)[0];
  EXPECT_EQ(p.name, "local");
  EXPECT_EQ(p.domain_prefix, "ci7-");
  EXPECT_EQ(p.cpus, 2);
  EXPECT_EQ(p.memory_mib, 1024u);
  ASSERT_EQ(p.disks.size(), 2u);
  EXPECT_EQ(p.disks[0].size_mib, 4096u);
  EXPECT_EQ(p.disks[1].size_mib, 512u);
  EXPECT_EQ(p.min, 1u);
  EXPECT_EQ(p.max, 3u);
  EXPECT_EQ(p.idle_timeout, absl::Seconds(90));
  EXPECT_EQ(p.labels.at("role"), "guest");
  EXPECT_EQ(p.labels.at("pool"), "local");
  EXPECT_EQ((*pools)[1].exec_create, "./up.sh");
}

// Validates that mistakes are reported with the file, the line, the field and what was expected.
TEST(PoolConfigTest, ErrorsNameLineAndField) {
  auto bad = ParsePoolConfig("pools:\n  local:\n    memroy: 1G\n", "kfleet.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("kfleet.yaml line 3"), absl::string_view::npos)
      << bad.status();
  EXPECT_NE(bad.status().message().find("pools.local.memroy"), absl::string_view::npos);

  auto minmax = ParsePoolConfig("pools:\n  p:\n    min: 3\n    max: 1\n", "f");
  EXPECT_NE(minmax.status().message().find("min 3 is larger than max 1"), absl::string_view::npos);

  auto size = ParsePoolConfig("pools:\n  p:\n    memory: lots\n", "f");
  EXPECT_NE(size.status().message().find("e.g. 512M"), absl::string_view::npos);

  auto exec = ParsePoolConfig("pools:\n  p:\n    provider: exec\n", "f");
  EXPECT_NE(exec.status().message().find("exec.create"), absl::string_view::npos);

  auto prefix = ParsePoolConfig("pools:\n  p:\n    domain_prefix: a/b\n", "f");
  EXPECT_NE(prefix.status().message().find("pools.p.domain_prefix"), absl::string_view::npos)
      << prefix.status();

  auto syntax = ParsePoolConfig("pools: [unclosed\n", "f");
  EXPECT_FALSE(syntax.ok());
}

// Validates that a file without `pools` (empty, comments only, or flags only) keeps the default
// pool, and that `pools: {}` declares none.
TEST(PoolConfigTest, NoPoolsKeyMeansDefaultPools) {
  for (const char* text : {"", "# every key commented out\n#listen: 127.0.0.1:7400\n",
                           "state-dir: /srv/kfleet\ntls-san: [a, b]\n"}) {
    auto pools = ParsePoolConfig(text, "f", {"state-dir", "tls-san"});
    ASSERT_TRUE(pools.ok()) << pools.status();
    ASSERT_EQ(pools->size(), 1u) << text;
    EXPECT_EQ((*pools)[0].name, "local");
  }
  auto none = ParsePoolConfig("pools: {}\n", "f");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

// Validates that top-level flag keys are left to the daemon's flag loader, and that any other
// top-level key is still refused with its line.
TEST(PoolConfigTest, SkipsFlagKeysOnly) {
  const std::string text =
      "state-dir: /srv/kfleet\n"
      "pools:\n"
      "  p: {max: 3}\n"
      "insecure: true\n";
  auto pools = ParsePoolConfig(text, "f", {"state-dir", "insecure"});
  ASSERT_TRUE(pools.ok()) << pools.status();
  ASSERT_EQ(pools->size(), 1u);
  EXPECT_EQ((*pools)[0].max, 3u);

  auto unknown = ParsePoolConfig(text, "kfleet.yaml", {"state-dir"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("kfleet.yaml line 4: unknown key \"insecure\""),
            absl::string_view::npos)
      << unknown.status();
  EXPECT_FALSE(ParsePoolConfig(text, "f").ok());  // no flag keys given: every other key refused
}

TEST(PoolConfigTest, DefaultPoolMatchesDesign) {
  std::vector<PoolConfig> pools = DefaultPools();
  ASSERT_EQ(pools.size(), 1u);
  EXPECT_EQ(pools[0].name, "local");
  EXPECT_EQ(pools[0].provider, "libvirt");
  EXPECT_EQ(pools[0].uri, "qemu:///system");
  EXPECT_EQ(pools[0].image, "tiny");
  EXPECT_EQ(pools[0].memory_mib, 512u);
  EXPECT_EQ(pools[0].max, 2u);
  EXPECT_EQ(pools[0].idle_timeout, absl::Minutes(10));
}

}  // namespace
}  // namespace kfleet::controller::provision

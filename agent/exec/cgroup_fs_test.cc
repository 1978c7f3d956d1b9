#include "agent/exec/cgroup_fs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace kfleet::agent {
namespace {

using ::testing::ElementsAre;

// This machine's mountinfo, cut down: tmpfs, v1 hierarchies, and a controller-less cgroup2.
constexpr char kHybridMountInfo[] =
    "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

// Validates that mountinfo yields root, mount point, type and super options, optional fields
// skipped.
TEST(CgroupFsTest, ParsesMountInfo) {
  std::vector<MountEntry> mounts = ParseMountInfo(
      std::string(kHybridMountInfo) +
      "41 30 0:38 /docker/abc /sys/fs/cgroup/pids rw shared:5 master:2 - cgroup cgroup rw,pids\n");
  ASSERT_EQ(mounts.size(), 6u);
  EXPECT_EQ(mounts[3].root, "/");
  EXPECT_EQ(mounts[3].mount_point, "/sys/fs/cgroup/memory");
  EXPECT_EQ(mounts[3].fs_type, "cgroup");
  EXPECT_THAT(mounts[3].super_options, ElementsAre("rw", "memory"));
  EXPECT_EQ(mounts[4].fs_type, "cgroup2");
  EXPECT_EQ(mounts[5].root, "/docker/abc");
  EXPECT_EQ(mounts[5].fs_type, "cgroup");
  EXPECT_THAT(mounts[5].super_options, ElementsAre("rw", "pids"));
}

// Validates that octal escapes in paths are undone and malformed lines are skipped.
TEST(CgroupFsTest, MountInfoEscapesAndMalformedLines) {
  std::vector<MountEntry> mounts = ParseMountInfo(
      "1 2 0:1 / /mnt/with\\040space rw - ext4 /dev/x rw\n"
      "garbage\n"
      "1 2 0:1 / /no/separator rw ext4 /dev/x rw\n"
      "1 2 0:1 / /short rw - ext4\n");
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].mount_point, "/mnt/with space");
}

// Validates that /proc/self/cgroup yields the v2 path and the memory controller's v1 path, and
// that paths holding ':' survive.
TEST(CgroupFsTest, ParsesProcCgroup) {
  ProcCgroups own =
      ParseProcCgroup("9:name=systemd:/\n4:memory:/process_api/caf0\n3:cpu,cpuacct:/x\n0::/a:b\n");
  EXPECT_EQ(own.v1_memory, "/process_api/caf0");
  EXPECT_EQ(own.v2, "/a:b");

  ProcCgroups combined = ParseProcCgroup("5:cpu,memory:/m\n");
  EXPECT_EQ(combined.v1_memory, "/m");
  EXPECT_EQ(combined.v2, "");
}

// Validates that a cgroup's directory accounts for a mount of a subtree, and that a cgroup outside
// the subtree has none.
TEST(CgroupFsTest, CgroupDirUnderMountRoot) {
  MountEntry full{"/", "/sys/fs/cgroup/memory", "cgroup", {}};
  EXPECT_EQ(CgroupDir(full, "/process_api/x"), "/sys/fs/cgroup/memory/process_api/x");
  EXPECT_EQ(CgroupDir(full, "/"), "/sys/fs/cgroup/memory");

  MountEntry sub{"/docker/abc", "/sys/fs/cgroup", "cgroup2", {}};
  EXPECT_EQ(CgroupDir(sub, "/docker/abc/svc"), "/sys/fs/cgroup/svc");
  EXPECT_EQ(CgroupDir(sub, "/docker/abc"), "/sys/fs/cgroup");
  EXPECT_EQ(CgroupDir(sub, "/docker/abcd"), std::nullopt);
  EXPECT_EQ(CgroupDir(sub, "/other"), std::nullopt);
}

// Validates that keyed files give their numbers, and a missing key or a non-number nothing.
TEST(CgroupFsTest, KeyedValues) {
  constexpr char kEvents[] = "low 0\nhigh 0\nmax 17\noom 2\noom_kill 3\noom_group_kill 0\n";
  EXPECT_EQ(KeyedValue(kEvents, "oom_kill"), 3);
  EXPECT_EQ(KeyedValue(kEvents, "oom"), 2);
  EXPECT_EQ(KeyedValue(kEvents, "oom_group"), std::nullopt);
  EXPECT_EQ(KeyedValue("oom_kill x\n", "oom_kill"), std::nullopt);
  EXPECT_EQ(KeyedValue("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "oom_kill"), 1);
}

// Validates that paths join with exactly one separator.
TEST(CgroupFsTest, JoinsPaths) {
  EXPECT_EQ(JoinPath("/", "/sys/fs/cgroup"), "/sys/fs/cgroup");
  EXPECT_EQ(JoinPath("/tmp/root/", "/sys"), "/tmp/root/sys");
  EXPECT_EQ(JoinPath("/", "kfleet"), "/kfleet");
  EXPECT_EQ(JoinPath("/a", ""), "/a");
  EXPECT_EQ(JoinPath("/", ""), "/");
}

}  // namespace
}  // namespace kfleet::agent

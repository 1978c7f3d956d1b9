#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "agent/collect/procfs.h"
#include "agent/collect/test_util.h"

namespace kfleet::agent {
namespace {

using ::kfleet::agent::testing::CountNamed;
using ::kfleet::agent::testing::ReadFixture;
using ::kfleet::agent::testing::ValueOf;
using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

std::set<std::string> Devices(const MetricSamples& out) {
  std::set<std::string> devices;
  for (const auto& s : out) devices.insert(s.labels().at("device"));
  return devices;
}

// Validates bytes from 512-byte sectors, seconds from milliseconds, and the gauge io_now.
TEST(ProcfsDiskstatsTest, Linux61Values) {
  MetricSamples out;
  ASSERT_TRUE(ParseDiskstats(ReadFixture("6.1", "proc/diskstats"), &out).ok());
  const testing::Labels vda = {{"device", "vda"}};
  EXPECT_THAT(ValueOf(out, "node_disk_reads_completed_total", vda), Optional(912345.0));
  EXPECT_THAT(ValueOf(out, "node_disk_reads_merged_total", vda), Optional(23456.0));
  EXPECT_THAT(ValueOf(out, "node_disk_read_bytes_total", vda), Optional(2048000.0 * 512));
  EXPECT_THAT(ValueOf(out, "node_disk_read_time_seconds_total", vda), Optional(DoubleEq(12.345)));
  EXPECT_THAT(ValueOf(out, "node_disk_writes_completed_total", vda), Optional(1234567.0));
  EXPECT_THAT(ValueOf(out, "node_disk_writes_merged_total", vda), Optional(345678.0));
  EXPECT_THAT(ValueOf(out, "node_disk_written_bytes_total", vda), Optional(4096000.0 * 512));
  EXPECT_THAT(ValueOf(out, "node_disk_write_time_seconds_total", vda), Optional(DoubleEq(234.567)));
  EXPECT_THAT(ValueOf(out, "node_disk_io_now", vda), Optional(2.0));
  EXPECT_THAT(ValueOf(out, "node_disk_io_time_seconds_total", vda), Optional(DoubleEq(345.678)));
  EXPECT_THAT(ValueOf(out, "node_disk_io_time_weighted_seconds_total", vda),
              Optional(DoubleEq(456.789)));
}

// Validates node_exporter's default device exclusion on each kernel's file.
TEST(ProcfsDiskstatsTest, ExcludesLikeNodeExporter) {
  struct Case {
    const char* kernel;
    std::set<std::string> devices;
  };
  for (const Case& c :
       {Case{"4.19", {"vda", "sr0"}}, Case{"5.10", {"nvme0n1", "dm-0"}},
        Case{"6.1", {"sr0", "vda", "vdb", "dm-0"}}, Case{"6.18", {"vda", "zram0"}}}) {
    SCOPED_TRACE(c.kernel);
    MetricSamples out;
    ASSERT_TRUE(ParseDiskstats(ReadFixture(c.kernel, "proc/diskstats"), &out).ok());
    EXPECT_EQ(Devices(out), c.devices);
    EXPECT_EQ(out.size(), 11 * c.devices.size());
  }
}

// Validates the corners of ^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$.
TEST(ProcfsDiskstatsTest, ExclusionCorners) {
  std::string content;
  for (const char* name :
       {"ram0", "loop12", "fd0", "sda1", "hdb2", "xvda3", "nvme0n1p1", "nvme10n2p33", "sda",
        "sdaa1", "loop", "nvme0n1", "md0", "mmcblk0p1", "ramdisk", "vdz9x"}) {
    content += std::string("8 0 ") + name + " 1 2 3 4 5 6 7 8 9 10 11\n";
  }
  MetricSamples out;
  ASSERT_TRUE(ParseDiskstats(content, &out).ok());
  EXPECT_EQ(Devices(out), (std::set<std::string>{"sda", "sdaa1", "loop", "nvme0n1", "md0",
                                                 "mmcblk0p1", "ramdisk", "vdz9x"}));
}

// Validates that short, non-numeric, duplicate and oversized lines are skipped.
TEST(ProcfsDiskstatsTest, MalformedLines) {
  std::string long_line =
      "8 0 sdb 1 2 3 4 5 6 7 8 9 10 11" + std::string(kMaxLineBytes, ' ') + "\n";
  MetricSamples out;
  ASSERT_TRUE(ParseDiskstats("8 0 sda 1 2 3 4 5 6 7 8 9 10\n"      // 10 columns: too short
                             "8 0 sdc 1 2 3 4 5 6 7 8 9 10 -11\n"  // negative
                             "x 0 sdd 1 2 3 4 5 6 7 8 9 10 11\n"   // bad major
                             "8 0 vda 1 2 3 4 5 6 7 8 9 10 11\n"   // good
                             "8 0 vda 9 9 9 9 9 9 9 9 9 9 9\n" +   // duplicate
                                 long_line,
                             &out)
                  .ok());
  EXPECT_EQ(Devices(out), (std::set<std::string>{"vda"}));
  EXPECT_THAT(ValueOf(out, "node_disk_reads_completed_total", {{"device", "vda"}}), Optional(1.0));
  absl::Status status = ParseDiskstats("8 0 sda 1 2\n", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("/proc/diskstats"));
}

// Validates which mounts node_exporter would report, the read-only flag and \040 unescaping.
TEST(ProcfsMountsTest, Linux419Selection) {
  absl::StatusOr<std::vector<Mount>> mounts = ParseMounts(ReadFixture("4.19", "proc/mounts"));
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  std::vector<std::string> points;
  for (const Mount& m : *mounts) points.push_back(m.mount_point);
  EXPECT_THAT(points,
              ElementsAre("/run", "/", "/run/lock", "/srv/kfleet results", "/run/user/1000"));
  const Mount& results = (*mounts)[3];
  EXPECT_EQ(results.device, "/dev/vdb");
  EXPECT_EQ(results.fstype, "xfs");
  EXPECT_TRUE(results.read_only);
  EXPECT_FALSE((*mounts)[1].read_only);  // "errors=remount-ro" is not "ro"
}

// Validates exclusions of docker, containers storage, systemd credentials, squashfs, and that a
// repeated mount is reported once.
TEST(ProcfsMountsTest, ExclusionsAndDuplicates) {
  for (const char* kernel : {"5.10", "6.1"}) {
    SCOPED_TRACE(kernel);
    absl::StatusOr<std::vector<Mount>> mounts = ParseMounts(ReadFixture(kernel, "proc/mounts"));
    ASSERT_TRUE(mounts.ok()) << mounts.status();
    std::vector<std::string> points;
    for (const Mount& m : *mounts) points.push_back(m.mount_point);
    if (std::string(kernel) == "5.10") {
      // /var/lib/docker itself is reported, what is below it is not.
      EXPECT_THAT(points, ElementsAre("/run", "/", "/run/lock", "/boot/efi", "/var/lib/docker",
                                      "/run/user/1000"));
    } else {
      EXPECT_THAT(points, ElementsAre("/run", "/", "/run/lock", "/boot/efi", "/var/lib/kfleet",
                                      "/run/user/1000"));
    }
  }
}

// Validates the mount point rules on their own.
TEST(ProcfsMountsTest, MountPointRules) {
  absl::StatusOr<std::vector<Mount>> mounts = ParseMounts(
      "a /dev ext4 rw 0 0\n"
      "a /devices ext4 rw 0 0\n"
      "a /sys/x ext4 rw 0 0\n"
      "a /system ext4 rw 0 0\n"
      "a /run/credentials ext4 rw 0 0\n"
      "a /run/credentials/x ext4 rw 0 0\n"
      "a /var/lib/docker/ ext4 rw 0 0\n"
      "a /var/lib/containers/storage/o ext4 rw 0 0\n"
      "a relative ext4 rw 0 0\n"
      "a /tab\\011and\\134slash ext4 ro,noatime 0 0\n"
      "a /bad\\xyz ext4 rw 0 0\n"
      "a /bin\xff ext4 rw 0 0\n"
      "a /zfs zfs rw\n");
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  std::vector<std::string> points;
  for (const Mount& m : *mounts) points.push_back(m.mount_point);
  EXPECT_THAT(points, ElementsAre("/devices", "/system", "/run/credentials", "/var/lib/docker/",
                                  "/tab\tand\\slash", "/bad\\xyz", "/zfs"));
}

// Validates the error when no line is readable, and that all-excluded is not an error.
TEST(ProcfsMountsTest, Errors) {
  EXPECT_EQ(ParseMounts("garbage\n").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseMounts("").status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<Mount>> none = ParseMounts("proc /proc proc rw 0 0\n");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// Validates the filesystem samples made from fake statvfs results, and device_error.
TEST(ProcfsFilesystemTest, SamplesFromStats) {
  Mount m{"/dev/vdb", "/srv/kfleet results", "xfs", true};
  FsStats st;
  st.block_size = 4096;
  st.blocks = 1000;
  st.blocks_free = 300;
  st.blocks_avail = 250;
  st.files = 6400;
  st.files_free = 6000;
  MetricSamples out;
  AppendFilesystemSamples(m, st, &out);
  const testing::Labels labels = {
      {"device", "/dev/vdb"}, {"fstype", "xfs"}, {"mountpoint", "/srv/kfleet results"}};
  EXPECT_THAT(ValueOf(out, "node_filesystem_device_error", labels), Optional(0.0));
  EXPECT_THAT(ValueOf(out, "node_filesystem_size_bytes", labels), Optional(4096000.0));
  EXPECT_THAT(ValueOf(out, "node_filesystem_free_bytes", labels), Optional(1228800.0));
  EXPECT_THAT(ValueOf(out, "node_filesystem_avail_bytes", labels), Optional(1024000.0));
  EXPECT_THAT(ValueOf(out, "node_filesystem_files", labels), Optional(6400.0));
  EXPECT_THAT(ValueOf(out, "node_filesystem_files_free", labels), Optional(6000.0));
  EXPECT_THAT(ValueOf(out, "node_filesystem_readonly", labels), Optional(1.0));
  EXPECT_EQ(out.size(), 7u);

  MetricSamples failed;
  AppendFilesystemSamples(m, absl::PermissionDeniedError("statvfs: denied"), &failed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_THAT(ValueOf(failed, "node_filesystem_device_error", labels), Optional(1.0));
}

}  // namespace
}  // namespace kfleet::agent

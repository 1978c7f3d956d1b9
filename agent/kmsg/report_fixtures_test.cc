// Kernel reports (WARNING, oops, BUG, panic, hung task, soft lockup, KASAN) in log excerpts of
// the forms 4.19, 5.10 and 6.1 print (testdata/).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/kmsg/fixture_events.h"
#include "agent/kmsg/kernel_events.h"
#include "agent/kmsg/kmsg_record.h"

namespace kfleet::agent {
namespace {

using ::kfleet::agent::fixtures::DetailLines;
using ::kfleet::agent::fixtures::EventsOf;
using ::kfleet::agent::fixtures::ExpectOom;
using ::kfleet::agent::fixtures::kBoot;
using ::kfleet::agent::fixtures::ReadFixture;
using ::testing::ElementsAre;
using ::testing::SizeIs;

// Validates 6.1 WARNINGs: one with its own message, registers, trace and end line; one whose
// end was not printed, which Flush brings out.
TEST(KmsgFixtureTest, Linux61Warnings) {
  std::vector<v1::KernelEvent> events = EventsOf("linux-6.1-warn.kmsg");
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].kind(), "warn");
  EXPECT_EQ(events[0].kmsg_seq(), 3103u);
  EXPECT_EQ(events[0].time_unix_ms(), kBoot + 91000120);
  EXPECT_EQ(events[0].message(),
            "WARNING: CPU: 1 PID: 8811 at drivers/misc/kfleet_test.c:45 kfleet_check+0x2d/0x40 "
            "[kfleet_test]");
  std::vector<std::string> detail = DetailLines(events[0]);
  ASSERT_THAT(detail, SizeIs(30));
  EXPECT_EQ(detail[0], "kfleet_test: value 3 out of range [0, 2]");
  EXPECT_EQ(detail[1],
            "Modules linked in: kfleet_test(O+) nls_ascii nls_cp437 vfat fat virtio_net "
            "net_failover failover");
  EXPECT_EQ(detail.back(), "---[ end trace 0000000000000000 ]---");
  EXPECT_EQ(events[1].kind(), "warn");
  EXPECT_EQ(events[1].kmsg_seq(), 3134u);
  EXPECT_THAT(DetailLines(events[1]), SizeIs(6));
}

// Validates 5.10 with printk caller ids: a NULL dereference oops (BUG, #PF and Oops lines are one
// report), the registers printed after its end line, and the panic that follows.
TEST(KmsgFixtureTest, Linux510OopsThenPanic) {
  std::vector<v1::KernelEvent> events = EventsOf("linux-5.10-oops-panic.kmsg");
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].kind(), "oops");
  EXPECT_EQ(events[0].kmsg_seq(), 1991u);
  EXPECT_EQ(events[0].message(), "BUG: kernel NULL pointer dereference, address: 0000000000000008");
  std::vector<std::string> detail = DetailLines(events[0]);
  ASSERT_THAT(detail, SizeIs(25));
  EXPECT_EQ(detail[3], "Oops: 0000 [#1] SMP NOPTI");
  EXPECT_EQ(detail.back(), "---[ end trace 3d9e5a1b2c4f6e70 ]---");
  EXPECT_EQ(events[1].kind(), "panic");
  EXPECT_EQ(events[1].kmsg_seq(), 2020u);
  EXPECT_EQ(events[1].message(), "Kernel panic - not syncing: Fatal exception");
  EXPECT_THAT(DetailLines(events[1]),
              ElementsAre("Kernel Offset: 0x3c000000 from 0xffffffff81000000 (relocation range: "
                          "0xffffffff80000000-0xffffffffbfffffff)",
                          "---[ end Kernel panic - not syncing: Fatal exception ]---"));
}

// Validates 6.1's hung task report, whose task and trace lines are at info level, a soft lockup,
// and a hung task cut short by the end of the excerpt.
TEST(KmsgFixtureTest, Linux61HungTaskAndSoftLockup) {
  std::vector<v1::KernelEvent> events = EventsOf("linux-6.1-hung-task-soft-lockup.kmsg");
  ASSERT_THAT(events, SizeIs(3));
  EXPECT_EQ(events[0].kind(), "hung_task");
  EXPECT_EQ(events[0].kmsg_seq(), 4501u);
  EXPECT_EQ(events[0].message(), "INFO: task kworker/u8:2:1234 blocked for more than 122 seconds.");
  std::vector<std::string> hung = DetailLines(events[0]);
  ASSERT_THAT(hung, SizeIs(15));
  EXPECT_EQ(hung[2],
            "task:kworker/u8:2    state:D stack:0     pid:1234  ppid:2      "
            "flags:0x00004000");
  EXPECT_EQ(hung.back(), " </TASK>");
  EXPECT_EQ(events[1].kind(), "soft_lockup");
  EXPECT_EQ(events[1].kmsg_seq(), 4518u);
  EXPECT_THAT(DetailLines(events[1]), SizeIs(14));
  EXPECT_EQ(events[2].kind(), "hung_task");
  EXPECT_EQ(events[2].kmsg_seq(), 4534u);
  EXPECT_THAT(DetailLines(events[2]), SizeIs(1));
}

// Validates a 6.1 KASAN report from its headline to the closing line of "=".
TEST(KmsgFixtureTest, Linux61Kasan) {
  std::vector<v1::KernelEvent> events = EventsOf("linux-6.1-kasan.kmsg");
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].kind(), "kasan");
  EXPECT_EQ(events[0].kmsg_seq(), 5202u);
  EXPECT_EQ(events[0].message(),
            "BUG: KASAN: use-after-free in kfleet_uaf+0x52/0x70 [kfleet_test]");
  std::vector<std::string> detail = DetailLines(events[0]);
  ASSERT_THAT(detail, SizeIs(47));  // 45 records, two of them holding a newline
  EXPECT_EQ(detail[0], "Read of size 8 at addr ffff888104c5e6c8 by task insmod/4444");
  EXPECT_EQ(detail.back(), "==================================================================");
}

// Validates 4.19 copied from dmesg: an oops with its Oops line, a kernel BUG with its invalid
// opcode line, a "BUG: scheduling while atomic", a general protection fault and a panic.
TEST(KmsgFixtureTest, Linux419OopsBugPanicFromDmesg) {
  std::vector<v1::KernelEvent> events = EventsOf("linux-4.19-oops-bug.dmesg");
  ASSERT_THAT(events, SizeIs(5));
  std::vector<std::string> kinds;
  std::vector<uint64_t> seqs;
  for (const v1::KernelEvent& e : events) {
    kinds.push_back(e.kind());
    seqs.push_back(e.kmsg_seq());
  }
  EXPECT_THAT(kinds, ElementsAre("oops", "bug", "bug", "oops", "panic"));
  EXPECT_THAT(seqs, ElementsAre(2, 23, 32, 35, 39));
  EXPECT_EQ(events[0].message(),
            "BUG: unable to handle kernel NULL pointer dereference at 0000000000000000");
  EXPECT_THAT(DetailLines(events[0]), SizeIs(19));
  EXPECT_EQ(events[1].message(), "kernel BUG at mm/slub.c:296!");
  EXPECT_EQ(DetailLines(events[1]).front(), "invalid opcode: 0000 [#2] SMP PTI");
  EXPECT_THAT(DetailLines(events[2]), SizeIs(2));
  EXPECT_EQ(events[3].time_unix_ms(), kBoot + 60500);
}

// Validates that every kernel log fixture parses whole, and that the fuzz corpus (this flat
// directory) holds nothing else that would fail to.
TEST(KmsgFixtureTest, EveryFixtureParses) {
  int fixtures = 0;
  for (const auto& entry : std::filesystem::directory_iterator(KFLEET_KMSG_TESTDATA)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".journal") continue;
    ++fixtures;
    absl::StatusOr<std::vector<KmsgRecord>> records = ParseKmsgText(ReadFixture(name));
    EXPECT_TRUE(records.ok()) << name << ": " << records.status();
    EXPECT_FALSE(EventsOf(name).empty()) << name;
  }
  EXPECT_EQ(fixtures, 11);
}

}  // namespace
}  // namespace kfleet::agent

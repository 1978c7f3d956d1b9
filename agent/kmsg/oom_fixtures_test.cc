// OOM kills in log excerpts of the forms real kernels and userspace killers print (testdata/):
// this machine's own global OOM kills, and 4.19, 5.4 and 6.1 excerpts written to their sources.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

// Validates this machine's (6.18) global OOM kill as /dev/kmsg handed it out, summary included.
TEST(KmsgFixtureTest, Linux618GlobalOomFromDevKmsg) {
  std::vector<v1::KernelEvent> events = EventsOf("linux-6.18-global-oom.kmsg");
  ASSERT_THAT(events, SizeIs(1));
  ExpectOom(events[0], 469, 12243018, R"pb(
    pid: 17246
    comm: "job_spec_fuzz_r"
    uid: 0
    total_vm_kb: 26749968
    anon_rss_kb: 22710352
    file_rss_kb: 0
    shmem_rss_kb: 0
    oom_score_adj: 0
    constraint: "CONSTRAINT_NONE"
    task_memcg: "/process_api/4252b02a612e3b9996ceced1d0377085"
    memcg: false
    killer: "kernel")pb");
  EXPECT_EQ(events[0].message(),
            "Out of memory: Killed process 17246 (job_spec_fuzz_r) total-vm:26749968kB, "
            "anon-rss:22710352kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:44516kB "
            "oom_score_adj:0");
  std::vector<std::string> detail = DetailLines(events[0]);
  ASSERT_THAT(detail, SizeIs(2));
  EXPECT_EQ(detail[0],
            "cc1plus invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), "
            "order=0, oom_score_adj=0");
  EXPECT_TRUE(absl::StartsWith(detail[1], "oom-kill:constraint=CONSTRAINT_NONE"));
}

// Validates the same machine's next two kills copied from dmesg, whose Mem-Info record spans
// several indented lines.
TEST(KmsgFixtureTest, Linux618GlobalOomFromDmesg) {
  std::vector<v1::KernelEvent> events = EventsOf("linux-6.18-global-oom.dmesg");
  ASSERT_THAT(events, SizeIs(2));
  const char kMemcg[] = R"pb(constraint: "CONSTRAINT_NONE"
                             task_memcg: "/process_api/4252b02a612e3b9996ceced1d0377085"
                             killer: "kernel")pb";
  ExpectOom(events[0], 2, 12643184,
            absl::StrCat(R"pb(pid: 20433
                              comm: "job_spec_fuzz_r"
                              total_vm_kb: 26750096
                              anon_rss_kb: 23190488
                              file_rss_kb: 32)pb",
                         " ", kMemcg));
  ExpectOom(events[1], 113, 13253547,
            absl::StrCat(R"pb(pid: 28720
                              comm: "job_spec_fuzz_r"
                              total_vm_kb: 26749968
                              anon_rss_kb: 24040376
                              file_rss_kb: 32)pb",
                         " ", kMemcg));
}

// Validates 4.19: a global kill described by its padded summary and choice line (no UID in the
// kill line), a memcg kill of a sacrificed child, a rate-limited kill with neither, and the "NMI
// watchdog:" soft lockup.
TEST(KmsgFixtureTest, Linux419OomAndSoftLockup) {
  std::vector<v1::KernelEvent> events = EventsOf("linux-4.19-oom.kmsg");
  ASSERT_THAT(events, SizeIs(4));
  ExpectOom(events[0], 1535, 2411081, R"pb(
    pid: 4153
    comm: "stress"
    uid: 1000
    total_vm_kb: 3156416
    anon_rss_kb: 1892396
    constraint: "CONSTRAINT_NONE"
    task_memcg: "/user.slice/user-1000.slice/session-2.scope"
    killer: "kernel")pb");
  ExpectOom(events[1], 1555, 2520114, R"pb(
    pid: 5131
    comm: "cc1"
    total_vm_kb: 108652
    anon_rss_kb: 95240
    constraint: "CONSTRAINT_MEMCG"
    oom_memcg: "/kfleet/c-7"
    memcg: true
    killer: "kernel")pb");
  ExpectOom(events[2], 1558, 2521007, R"pb(
    pid: 4160
    comm: "stress"
    total_vm_kb: 3156416
    anon_rss_kb: 1873020
    file_rss_kb: 4
    killer: "kernel")pb");
  EXPECT_THAT(DetailLines(events[0]), SizeIs(3));
  EXPECT_EQ(events[3].kind(), "soft_lockup");
  EXPECT_EQ(events[3].kmsg_seq(), 1559u);
  EXPECT_EQ(events[3].message(),
            "NMI watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [kworker/0:1:42]");
  std::vector<std::string> detail = DetailLines(events[3]);
  ASSERT_THAT(detail, SizeIs(12));
  EXPECT_TRUE(absl::StartsWith(detail.front(), "Modules linked in:"));
  EXPECT_EQ(detail.back(), " ret_from_fork+0x35/0x40");
}

// Validates 5.4 copied from dmesg: a global kill with UID, pgtables and oom_score_adj, a memcg
// kill with its summary, and a second memcg kill whose summary was rate-limited away.
TEST(KmsgFixtureTest, Linux54OomFromDmesg) {
  std::vector<v1::KernelEvent> events = EventsOf("linux-5.4-oom.dmesg");
  ASSERT_THAT(events, SizeIs(3));
  ExpectOom(events[0], 37, 1187654, R"pb(
    pid: 2847
    comm: "java"
    uid: 1000
    total_vm_kb: 6928136
    anon_rss_kb: 3565280
    constraint: "CONSTRAINT_NONE"
    task_memcg: "/user.slice/user-1000.slice/session-3.scope"
    killer: "kernel")pb");
  ExpectOom(events[1], 57, 1402300, R"pb(
    pid: 3310
    comm: "python3"
    total_vm_kb: 287336
    anon_rss_kb: 258004
    file_rss_kb: 1204
    constraint: "CONSTRAINT_MEMCG"
    oom_memcg: "/docker/3f1c2a9e"
    task_memcg: "/docker/3f1c2a9e"
    memcg: true
    killer: "kernel")pb");
  ExpectOom(events[2], 59, 1403100, R"pb(
    pid: 3322
    comm: "python3"
    total_vm_kb: 287336
    anon_rss_kb: 257996
    file_rss_kb: 1180
    oom_score_adj: 500
    memcg: true
    killer: "kernel")pb");
  EXPECT_EQ(events[2].detail(), "");
}

// Validates 6.1's memcg OOM of a command's cgroup, with a line userspace wrote to /dev/kmsg
// before it.
TEST(KmsgFixtureTest, Linux61MemcgOom) {
  std::vector<v1::KernelEvent> events = EventsOf("linux-6.1-memcg-oom.kmsg");
  ASSERT_THAT(events, SizeIs(1));
  ExpectOom(events[0], 2248, 88163920, R"pb(
    pid: 7301
    comm: "tail"
    uid: 0
    total_vm_kb: 2125196
    anon_rss_kb: 64964
    constraint: "CONSTRAINT_MEMCG"
    oom_memcg: "/kfleet/c-1"
    task_memcg: "/kfleet/c-1"
    memcg: true
    killer: "kernel")pb");
}

// Validates kernel lines at their edges: an escaped record with a dictionary, a comm with spaces
// and parentheses, a comm that holds ") total-vm:", 4.19's "pid=  123", systemd-oomd logging to
// /dev/kmsg, a fake panic written by a program, and a continuation fragment.
TEST(KmsgFixtureTest, EdgeCases) {
  absl::StatusOr<std::vector<KmsgRecord>> records =
      ParseKmsgText(ReadFixture("comm-edge-cases.kmsg"));
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ((*records)[0].message,
            "virtio_net virtio0 enp0s3: renamed from eth0,\ttab\\backslash\nsecond line");
  EXPECT_THAT((*records)[0].dict, SizeIs(2));

  std::vector<v1::KernelEvent> events = EventsOf("comm-edge-cases.kmsg");
  ASSERT_THAT(events, SizeIs(5));
  ExpectOom(events[0], 103, 2000, R"pb(
    pid: 777
    comm: "my (weird) prog"
    uid: 1000
    total_vm_kb: 10240
    anon_rss_kb: 8192
    file_rss_kb: 1024
    shmem_rss_kb: 512
    oom_score_adj: -100
    constraint: "CONSTRAINT_MEMCG"
    oom_memcg: "/kfleet/c-2"
    task_memcg: "/kfleet/c-2/sub"
    memcg: true
    killer: "kernel")pb");
  ExpectOom(events[1], 104, 3000, R"pb(
    pid: 779
    comm: "x) total-vm:1kB"
    total_vm_kb: 4096
    anon_rss_kb: 2048
    killer: "kernel")pb");
  ExpectOom(events[2], 107, 4000, R"pb(
    pid: 123
    comm: "sh"
    uid: 0
    total_vm_kb: 2048
    anon_rss_kb: 100
    file_rss_kb: 200
    constraint: "CONSTRAINT_NONE"
    task_memcg: "/"
    killer: "kernel")pb");
  ExpectOom(events[3], 108, 5000, R"pb(
    task_memcg: "/system.slice/build.service"
    oom_memcg: "/system.slice"
    killer: "systemd-oomd")pb");
  EXPECT_EQ(events[4].kind(), "warn");
  EXPECT_EQ(events[4].kmsg_seq(), 110u);
}

// Validates the userspace killers' journal lines fed as text: five earlyoom kills in three
// versions' formats, two systemd-oomd kills, and no event for the other lines, kernel ones too.
TEST(KmsgFixtureTest, UserspaceKillersFromTheJournal) {
  KernelEventParser parser("boot-x", kBoot);
  std::vector<v1::KernelEvent> events;
  int64_t time = 1'732'445'000'000;
  for (absl::string_view line : absl::StrSplit(ReadFixture("userspace-killers.journal"), '\n')) {
    for (v1::KernelEvent& e : parser.FeedLine(line, ++time)) events.push_back(std::move(e));
  }
  ASSERT_THAT(events, SizeIs(7));
  std::vector<int> pids;
  for (const v1::KernelEvent& e : events) {
    EXPECT_EQ(e.kind(), "oom");
    pids.push_back(e.oom().pid());
  }
  EXPECT_THAT(pids, ElementsAre(4567, 4601, 1985588, 3001, 3100, 0, 0));
  EXPECT_EQ(events[0].time_unix_ms(), 1'732'445'000'003);
  ExpectOom(events[1], 0, events[1].time_unix_ms() - kBoot, R"pb(
    pid: 4601
    comm: "Web Content"
    uid: 1000
    anon_rss_kb: 1546240
    oom_score_adj: 300
    killer: "earlyoom")pb");
  ExpectOom(events[2], 0, events[2].time_unix_ms() - kBoot,
            R"pb(
              pid: 1985588 comm: "(sd-pam)" uid: 1000 anon_rss_kb: 12288 killer: "earlyoom")pb");
  ExpectOom(events[5], 0, events[5].time_unix_ms() - kBoot, R"pb(
    task_memcg: "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-4242.scope"
    oom_memcg: "/user.slice/user-1000.slice/user@1000.service"
    killer: "systemd-oomd")pb");
  EXPECT_EQ(events[6].oom().task_memcg(), "/system.slice/kfleet-agent.service/c-3");
  EXPECT_EQ(events[6].message(),
            "Killed /system.slice/kfleet-agent.service/c-3 due to memory used (8011345920) / total "
            "(8324317184) and swap used (2018441216) / total (2147479552) being more than 90.00%");
}

}  // namespace
}  // namespace kfleet::agent

#include "agent/kmsg/kernel_events.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kfleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kBoot = 1'700'000'000'000;

KmsgRecord Rec(uint64_t seq, uint64_t timestamp_us, int priority, std::string message) {
  KmsgRecord record;
  record.seq = seq;
  record.timestamp_us = timestamp_us;
  record.priority = priority;
  record.message = std::move(message);
  return record;
}

// Feeds `records` and flushes; returns every event.
std::vector<v1::KernelEvent> FeedAll(KernelEventParser& parser,
                                     const std::vector<KmsgRecord>& records) {
  std::vector<v1::KernelEvent> events;
  for (const KmsgRecord& record : records) {
    for (v1::KernelEvent& e : parser.Feed(record)) events.push_back(std::move(e));
  }
  for (v1::KernelEvent& e : parser.Flush()) events.push_back(std::move(e));
  return events;
}

std::vector<std::string> DetailLines(const v1::KernelEvent& event) {
  if (event.detail().empty()) return {};
  return absl::StrSplit(event.detail(), '\n');
}

const char kKilled[] =
    "Out of memory: Killed process 42 (stress) total-vm:100kB, anon-rss:80kB, file-rss:4kB, "
    "shmem-rss:0kB, UID:1000 pgtables:8kB oom_score_adj:0";

// Validates that an OOM kill comes out at once, timed from boot, with seq and boot id, and is
// enriched by the summary that named the same pid.
TEST(KmsgEventParserTest, OomKillIsEnrichedBySummaryOfSamePid) {
  KernelEventParser parser("boot-1", kBoot);
  EXPECT_THAT(parser.Feed(Rec(1, 1'000'000, 4, "stress invoked oom-killer: gfp_mask=0xcc0()")),
              IsEmpty());
  EXPECT_THAT(parser.Feed(Rec(2, 1'000'100, 6,
                              "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
                              "mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=stress,pid=42,"
                              "uid=1000")),
              IsEmpty());
  std::vector<v1::KernelEvent> events = parser.Feed(Rec(3, 1'234'567, 3, kKilled));
  ASSERT_THAT(events, SizeIs(1));
  const v1::KernelEvent& e = events[0];
  EXPECT_EQ(e.kind(), "oom");
  EXPECT_EQ(e.kmsg_seq(), 3u);
  EXPECT_EQ(e.boot_id(), "boot-1");
  EXPECT_EQ(e.time_unix_ms(), kBoot + 1234);
  EXPECT_EQ(e.message(), kKilled);
  EXPECT_EQ(e.command_id(), "");
  EXPECT_EQ(e.oom().pid(), 42);
  EXPECT_EQ(e.oom().constraint(), "CONSTRAINT_MEMCG");
  EXPECT_EQ(e.oom().oom_memcg(), "/a");
  EXPECT_EQ(e.oom().task_memcg(), "/a/b");
  EXPECT_TRUE(e.oom().memcg());
  EXPECT_THAT(DetailLines(e), SizeIs(2));
  EXPECT_THAT(parser.Flush(), IsEmpty());
}

// Validates that a summary of another pid, or one already used, does not describe a kill.
TEST(KmsgEventParserTest, SummaryOfOtherPidIsNotApplied) {
  KernelEventParser parser("b", 0);
  parser.Feed(Rec(1, 1, 6, "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/x,task=y,pid=7,uid=0"));
  std::vector<v1::KernelEvent> first = parser.Feed(Rec(2, 2, 3, kKilled));
  ASSERT_THAT(first, SizeIs(1));
  EXPECT_EQ(first[0].oom().constraint(), "");
  EXPECT_FALSE(first[0].oom().memcg());
  // The rate-limited kill after it gets no summary at all.
  parser.Feed(
      Rec(3, 3, 6, "oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/x,task=s,pid=42,uid=0"));
  ASSERT_EQ(parser.Feed(Rec(4, 4, 3, kKilled))[0].oom().constraint(), "CONSTRAINT_MEMCG");
  ASSERT_EQ(parser.Feed(Rec(5, 5, 3, kKilled))[0].oom().constraint(), "");
}

// Validates 4.19: the choice line names the parent, a child is killed; the summary (of the
// parent) still tells the constraint, and the choice line that the OOM was a memcg one.
TEST(KmsgEventParserTest, ChoiceLineOf419DescribesSacrificedChild) {
  KernelEventParser parser("b", 0);
  parser.Feed(Rec(1, 1, 6,
                  "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
                  "oom_memcg=/k,task_memcg=/k,task=make,pid= 5120,uid=    0"));
  parser.Feed(Rec(2, 2, 3,
                  "Memory cgroup out of memory: Kill process 5120 (make) score 59 or "
                  "sacrifice child"));
  std::vector<v1::KernelEvent> events =
      parser.Feed(Rec(3, 3, 3,
                      "Killed process 5131 (cc1) total-vm:10kB, anon-rss:9kB, file-rss:0kB, "
                      "shmem-rss:0kB"));
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].oom().pid(), 5131);
  EXPECT_EQ(events[0].oom().constraint(), "CONSTRAINT_MEMCG");
  EXPECT_EQ(events[0].oom().oom_memcg(), "/k");
  EXPECT_EQ(events[0].oom().task_memcg(), "");
  EXPECT_TRUE(events[0].oom().memcg());
  // A choice line holds for the next record only.
  parser.Feed(Rec(4, 4, 3,
                  "Memory cgroup out of memory: Kill process 1 (x) score 1 or sacrifice "
                  "child"));
  parser.Feed(Rec(5, 5, 6, "something else"));
  std::vector<v1::KernelEvent> later = parser.Feed(
      Rec(6, 6, 3, "Killed process 2 (y) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB"));
  ASSERT_THAT(later, SizeIs(1));
  EXPECT_FALSE(later[0].oom().memcg());
}

// Validates that a report runs to its end line, which its detail keeps, and that lines after it
// are not part of it.
TEST(KmsgEventParserTest, ReportEndsAtEndTrace) {
  KernelEventParser parser("b", 0);
  std::vector<v1::KernelEvent> events = FeedAll(
      parser, {Rec(1, 10, 4, "WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2"),
               Rec(2, 11, 4, "CPU: 0 PID: 1 Comm: init"), Rec(3, 12, 4, "Call Trace:"),
               Rec(4, 13, 4, " f+0x1/0x2"), Rec(5, 14, 4, "---[ end trace 0000000000000000 ]---"),
               Rec(6, 15, 4, "RIP: 0010:f+0x1/0x2")});
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].kind(), "warn");
  EXPECT_EQ(events[0].kmsg_seq(), 1u);
  EXPECT_THAT(DetailLines(events[0]),
              ElementsAre("CPU: 0 PID: 1 Comm: init", "Call Trace:", " f+0x1/0x2",
                          "---[ end trace 0000000000000000 ]---"));
}

// Validates the other ends of a report: a new headline, a pause in the log, an unrelated line of
// lower severity, and Flush.
TEST(KmsgEventParserTest, ReportEndsAtHeadlineGapQuietLineOrFlush) {
  KernelEventParser parser("b", 0);
  std::vector<v1::KernelEvent> events =
      FeedAll(parser, {Rec(1, 0, 0, "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [a:1]"),
                       Rec(2, 1, 4, "CPU: 0 PID: 1 Comm: a"),
                       Rec(3, 2, 3, "INFO: task b:2 blocked for more than 120 seconds."),
                       Rec(4, 3, 6, "task:b               state:D stack:0     pid:2"),
                       Rec(5, 4, 6, " schedule+0x1/0x2"), Rec(6, 5, 6, "usb 1-1: new device"),
                       Rec(7, 6, 2, "kernel BUG at mm/x.c:1!"),
                       Rec(8, 6 + kReportGapUs + 1, 4, " late+0x1/0x2"),
                       Rec(9, 20'000'000, 1, "BUG: KASAN: use-after-free in f+0x1/0x2"),
                       Rec(10, 20'000'001, 3, "Read of size 8")});
  ASSERT_THAT(events, SizeIs(4));
  EXPECT_EQ(events[0].kind(), "soft_lockup");
  EXPECT_THAT(DetailLines(events[0]), ElementsAre("CPU: 0 PID: 1 Comm: a"));
  EXPECT_EQ(events[1].kind(), "hung_task");
  EXPECT_THAT(DetailLines(events[1]),
              ElementsAre("task:b               state:D stack:0     pid:2", " schedule+0x1/0x2"));
  EXPECT_EQ(events[2].kind(), "bug");
  EXPECT_THAT(DetailLines(events[2]), IsEmpty());
  EXPECT_EQ(events[3].kind(), "kasan");
  EXPECT_THAT(DetailLines(events[3]), ElementsAre("Read of size 8"));
}

// Validates that the Oops line an oops or BUG prints after its headline stays in that report,
// while it starts a report of its own after anything else.
TEST(KmsgEventParserTest, DieLineJoinsOopsAndBugReports) {
  KernelEventParser parser("b", 0);
  std::vector<v1::KernelEvent> events = FeedAll(
      parser, {Rec(1, 1, 1, "BUG: kernel NULL pointer dereference, address: 0"),
               Rec(2, 2, 4, "Oops: 0000 [#1] SMP NOPTI"), Rec(3, 3, 4, "---[ end trace 1 ]---"),
               Rec(4, 4, 4, "WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2"),
               Rec(5, 5, 4, "general protection fault: 0000 [#2] SMP")});
  ASSERT_THAT(events, SizeIs(3));
  EXPECT_EQ(events[0].kind(), "oops");
  EXPECT_THAT(DetailLines(events[0]),
              ElementsAre("Oops: 0000 [#1] SMP NOPTI", "---[ end trace 1 ]---"));
  EXPECT_EQ(events[1].kind(), "warn");
  EXPECT_EQ(events[2].kind(), "oops");
  EXPECT_EQ(events[2].kmsg_seq(), 5u);
}

// Validates the caps on detail: at most kMaxDetailLines lines and kMaxDetailBytes bytes, marked.
TEST(KmsgEventParserTest, DetailIsBounded) {
  KernelEventParser parser("b", 0);
  std::vector<KmsgRecord> records = {Rec(1, 1, 4, "WARNING: CPU: 0 PID: 1 at a.c:1 f")};
  for (uint64_t i = 0; i < 500; ++i) records.push_back(Rec(2 + i, 2, 4, absl::StrCat(" f", i)));
  std::vector<v1::KernelEvent> events = FeedAll(parser, records);
  ASSERT_THAT(events, SizeIs(1));
  std::vector<std::string> lines = DetailLines(events[0]);
  EXPECT_EQ(lines.size(), static_cast<size_t>(kMaxDetailLines));
  EXPECT_EQ(lines.front(), " f0");
  EXPECT_EQ(lines.back(), "[truncated]");

  records = {Rec(1, 1, 4, "WARNING: CPU: 0 PID: 1 at a.c:1 f")};
  for (uint64_t i = 0; i < 10; ++i) records.push_back(Rec(2 + i, 2, 4, std::string(3000, 'x')));
  events = FeedAll(parser, records);
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_LE(events[0].detail().size(), kMaxDetailBytes);
  EXPECT_THAT(DetailLines(events[0]), SizeIs(3));
}

// Validates that a WARN's own message, printed between "cut here" and the WARNING line, leads
// its detail, and that a message not followed by a WARNING is forgotten.
TEST(KmsgEventParserTest, WarnMessageBeforeHeadlineLeadsDetail) {
  KernelEventParser parser("b", 0);
  std::vector<v1::KernelEvent> events = FeedAll(
      parser,
      {Rec(1, 1, 4, "------------[ cut here ]------------"), Rec(2, 2, 4, "my driver: bad state 3"),
       Rec(3, 3, 4, "WARNING: CPU: 0 PID: 1 at a.c:1 f"), Rec(4, 4, 4, "---[ end trace 0 ]---"),
       Rec(5, 5, 4, "------------[ cut here ]------------"), Rec(6, 6, 4, "stray"),
       Rec(7, 7, 6, "another"), Rec(8, 8, 4, "WARNING: CPU: 0 PID: 1 at b.c:2 g")});
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_THAT(DetailLines(events[0]),
              ElementsAre("my driver: bad state 3", "---[ end trace 0 ]---"));
  EXPECT_THAT(DetailLines(events[1]), IsEmpty());
}

// Validates that lines userspace wrote to /dev/kmsg start no kernel report, but that a userspace
// killer's line there is still an OOM kill.
TEST(KmsgEventParserTest, UserspaceRecordsAreOnlyCheckedForKillers) {
  KernelEventParser parser("b", kBoot);
  KmsgRecord fake = Rec(1, 1'000'000, 4, "Kernel panic - not syncing: fake");
  fake.facility = 1;
  KmsgRecord oomd = Rec(2, 2'000'000, 6,
                        "systemd-oomd[4]: Killed /a.service due to memory pressure for / being "
                        "70.00% > 60.00% for > 30s with reclaim activity");
  oomd.facility = 3;
  std::vector<v1::KernelEvent> events = FeedAll(parser, {fake, oomd});
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].kind(), "oom");
  EXPECT_EQ(events[0].kmsg_seq(), 2u);
  EXPECT_EQ(events[0].time_unix_ms(), kBoot + 2000);
  EXPECT_EQ(events[0].oom().killer(), "systemd-oomd");
  EXPECT_EQ(events[0].oom().task_memcg(), "/a.service");
}

// Validates FeedLine: a userspace killer's journal line is an event at the given time; other
// lines, kernel ones included, are not, and the kernel report state is left alone.
TEST(KmsgEventParserTest, FeedLineTakesUserspaceKillers) {
  KernelEventParser parser("b", 0);
  parser.Feed(Rec(1, 1, 4, "WARNING: CPU: 0 PID: 1 at a.c:1 f"));
  std::vector<v1::KernelEvent> events = parser.FeedLine(
      "Nov 24 10:46:01 h earlyoom[781]: sending SIGTERM to process 4567 uid 1000 \"firefox\": "
      "oom_score 600, VmRSS 2000 MiB, cmdline \"firefox\"",
      1'732'445'161'000);
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].kind(), "oom");
  EXPECT_EQ(events[0].time_unix_ms(), 1'732'445'161'000);
  EXPECT_EQ(events[0].kmsg_seq(), 0u);
  EXPECT_EQ(events[0].oom().killer(), "earlyoom");
  EXPECT_THAT(parser.FeedLine(std::string("h kernel: ") + kKilled, 5), IsEmpty());
  EXPECT_TRUE(parser.report_open());
  EXPECT_THAT(parser.Flush(), SizeIs(1));
}

}  // namespace
}  // namespace kfleet::agent

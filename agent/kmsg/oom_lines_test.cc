#include "agent/kmsg/oom_lines.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kfleet::agent {
namespace {

// Validates the 5.x/6.x kill line, every field.
TEST(KmsgOomLinesTest, ParsesKilledLineOfCurrentKernels) {
  std::optional<v1::OomKill> oom = ParseOomKilledLine(
      "Out of memory: Killed process 17246 (job_spec_fuzz_r) total-vm:26749968kB, "
      "anon-rss:22710352kB, file-rss:32kB, shmem-rss:4kB, UID:1000 pgtables:44516kB "
      "oom_score_adj:-17");
  ASSERT_TRUE(oom.has_value());
  EXPECT_EQ(oom->pid(), 17246);
  EXPECT_EQ(oom->comm(), "job_spec_fuzz_r");
  EXPECT_EQ(oom->total_vm_kb(), 26749968u);
  EXPECT_EQ(oom->anon_rss_kb(), 22710352u);
  EXPECT_EQ(oom->file_rss_kb(), 32u);
  EXPECT_EQ(oom->shmem_rss_kb(), 4u);
  EXPECT_EQ(oom->uid(), 1000);
  EXPECT_EQ(oom->oom_score_adj(), -17);
  EXPECT_FALSE(oom->memcg());
  EXPECT_EQ(oom->killer(), "kernel");
}

// Validates 4.19's line without prefix, UID or pgtables, and the memcg prefix.
TEST(KmsgOomLinesTest, ParsesOldAndMemcgForms) {
  std::optional<v1::OomKill> old = ParseOomKilledLine(
      "Killed process 4153 (stress) total-vm:3156416kB, anon-rss:1892396kB, file-rss:0kB, "
      "shmem-rss:0kB");
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->pid(), 4153);
  EXPECT_EQ(old->anon_rss_kb(), 1892396u);
  EXPECT_EQ(old->uid(), 0);
  std::optional<v1::OomKill> memcg = ParseOomKilledLine(
      "Memory cgroup out of memory: Killed process 7 (tail) total-vm:1kB, anon-rss:2kB, "
      "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0");
  ASSERT_TRUE(memcg.has_value());
  EXPECT_TRUE(memcg->memcg());
  std::optional<v1::OomKill> syslog = ParseOomKilledLine(
      "Nov 24 11:07:02 h kernel: Memory cgroup out of memory: Killed process 7 (tail) "
      "total-vm:1kB, anon-rss:2kB, file-rss:0kB, shmem-rss:0kB");
  ASSERT_TRUE(syslog.has_value());
  EXPECT_TRUE(syslog->memcg());
  std::optional<v1::OomKill> allocating = ParseOomKilledLine(
      "Out of memory (oom_kill_allocating_task): Killed process 8 (a) total-vm:1kB, "
      "anon-rss:2kB, file-rss:0kB, shmem-rss:0kB");
  ASSERT_TRUE(allocating.has_value());
  EXPECT_EQ(allocating->pid(), 8);
}

// Validates that comm runs to the last ") total-vm:", so it may hold spaces and parentheses.
TEST(KmsgOomLinesTest, CommMayHoldSpacesAndParentheses) {
  std::optional<v1::OomKill> oom = ParseOomKilledLine(
      "Out of memory: Killed process 123 (my (weird) prog) total-vm:10kB, anon-rss:5kB, "
      "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0");
  ASSERT_TRUE(oom.has_value());
  EXPECT_EQ(oom->comm(), "my (weird) prog");
  std::optional<v1::OomKill> tricky = ParseOomKilledLine(
      "Out of memory: Killed process 9 (a) total-vm:1kB) total-vm:10kB, anon-rss:5kB, "
      "file-rss:0kB, shmem-rss:0kB");
  ASSERT_TRUE(tricky.has_value());
  EXPECT_EQ(tricky->comm(), "a) total-vm:1kB");
  EXPECT_EQ(tricky->total_vm_kb(), 10u);
}

// Validates that lines that only look alike are not kills.
TEST(KmsgOomLinesTest, RejectsOtherLines) {
  for (const char* line : {
           "oom_reaper: reaped process 17246 (x), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
           "Killed process 12 (x)",
           "Killed process x (y) total-vm:1kB, anon-rss:1kB",
           "Killed process 12 (x) total-vm:abc, anon-rss:1kB",
           "Killed process 12 (x) total-vm:1kB",
           "systemd: Killed process 12 (x) and more",
           "somethingKilled process 12 (x) total-vm:1kB, anon-rss:1kB",
       }) {
    EXPECT_FALSE(ParseOomKilledLine(line).has_value()) << line;
  }
}

// Validates the summary of a memcg OOM as 6.1 prints it.
TEST(KmsgOomLinesTest, ParsesMemcgSummary) {
  std::optional<OomSummary> summary = ParseOomSummary(
      "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
      "oom_memcg=/kfleet/c-1,task_memcg=/kfleet/c-1/x,task=tail,pid=4321,uid=0");
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->constraint, "CONSTRAINT_MEMCG");
  EXPECT_EQ(summary->oom_memcg, "/kfleet/c-1");
  EXPECT_EQ(summary->task_memcg, "/kfleet/c-1/x");
  EXPECT_EQ(summary->task, "tail");
  EXPECT_EQ(summary->pid, 4321);
  EXPECT_EQ(summary->uid, 0);
}

// Validates a global OOM's summary with 4.19's padding and a node list that holds commas.
TEST(KmsgOomLinesTest, ParsesGlobalPaddedSummary) {
  std::optional<OomSummary> summary = ParseOomSummary(
      "oom-kill:constraint=CONSTRAINT_NONE,nodemask=0-1,3,cpuset=/,mems_allowed=0,2,global_oom,"
      "task_memcg=/user.slice,task=my, (odd),pid=  123,uid= 1000");
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->constraint, "CONSTRAINT_NONE");
  EXPECT_EQ(summary->oom_memcg, "");
  EXPECT_EQ(summary->task_memcg, "/user.slice");
  EXPECT_EQ(summary->task, "my, (odd)");
  EXPECT_EQ(summary->pid, 123);
  EXPECT_EQ(summary->uid, 1000);
}

// Validates a summary cut short: what is there is kept, the rest stays unset.
TEST(KmsgOomLinesTest, ParsesPartialSummary) {
  std::optional<OomSummary> summary = ParseOomSummary("oom-kill:constraint=CONSTRAINT_NONE");
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->constraint, "CONSTRAINT_NONE");
  EXPECT_EQ(summary->pid, 0);
  EXPECT_EQ(summary->uid, -1);
  EXPECT_FALSE(ParseOomSummary("oom-kill:").has_value());
  EXPECT_FALSE(ParseOomSummary("Out of memory").has_value());
}

// Validates 4.19's choice line.
TEST(KmsgOomLinesTest, ParsesChoiceLine) {
  std::optional<OomChoice> global =
      ParseOomChoiceLine("Out of memory: Kill process 4153 (stress) score 912 or sacrifice child");
  ASSERT_TRUE(global.has_value());
  EXPECT_EQ(global->pid, 4153);
  EXPECT_FALSE(global->memcg);
  std::optional<OomChoice> memcg = ParseOomChoiceLine(
      "Memory cgroup out of memory: Kill process 5120 (make) score 59 or sacrifice child");
  ASSERT_TRUE(memcg.has_value());
  EXPECT_TRUE(memcg->memcg);
  EXPECT_FALSE(ParseOomChoiceLine("Out of memory: Kill process x (y)").has_value());
  EXPECT_TRUE(IsOomHeader("cc1 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0"));
}

// Validates each version of earlyoom's kill line, with and without a syslog prefix.
TEST(KmsgOomLinesTest, ParsesEarlyoomLines) {
  std::optional<UserspaceKill> v18 = ParseEarlyoomLine(
      "Nov 24 10:46:01 h earlyoom[781]: sending SIGTERM to process 4567 uid 1000 \"firefox\": "
      "oom_score 600, VmRSS 2000 MiB, cmdline \"/usr/lib/firefox/firefox, VmRSS 1 MiB\"");
  ASSERT_TRUE(v18.has_value());
  EXPECT_EQ(v18->oom.pid(), 4567);
  EXPECT_EQ(v18->oom.uid(), 1000);
  EXPECT_EQ(v18->oom.comm(), "firefox");
  EXPECT_EQ(v18->oom.anon_rss_kb(), 2000u * 1024);
  EXPECT_EQ(v18->oom.killer(), "earlyoom");
  EXPECT_THAT(v18->message, ::testing::StartsWith("sending SIGTERM to process 4567"));

  std::optional<UserspaceKill> adj = ParseEarlyoomLine(
      "earlyoom: sending SIGKILL to process 7 uid 0 \"a \"quoted\" name\": oom_score 1, "
      "oom_score_adj 300, VmRSS 5 MiB, cmdline \"x\"");
  ASSERT_TRUE(adj.has_value());
  EXPECT_EQ(adj->oom.comm(), "a \"quoted\" name");
  EXPECT_EQ(adj->oom.oom_score_adj(), 300);

  std::optional<UserspaceKill> old =
      ParseEarlyoomLine("sending SIGKILL to process 3001 \"cc1plus\": badness 900, VmRSS 2048 MiB");
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->oom.pid(), 3001);
  EXPECT_EQ(old->oom.uid(), 0);
  EXPECT_EQ(old->oom.anon_rss_kb(), 2048u * 1024);

  for (const char* line : {
           "earlyoom[1]: sending 0 (no-op signal) to process 7 uid 0 \"a\": badness 1, VmRSS 1 MiB",
           "earlyoom[1]: mem avail: 100 of 200 MiB",
           "sending SIGTERM to process 7 uid 0 \"unterminated",
           "kernel: sending SIGTERM to process 7 uid 0 \"a\": badness 1, VmRSS 1 MiB",
       }) {
    EXPECT_FALSE(ParseEarlyoomLine(line).has_value()) << line;
  }
}

// Validates systemd-oomd's pressure and swap kills, and its newer "Marked" form.
TEST(KmsgOomLinesTest, ParsesSystemdOomdLines) {
  std::optional<UserspaceKill> pressure = ParseSystemdOomdLine(
      "Nov 24 11:02:13 h systemd-oomd[402]: Killed /user.slice/app.scope due to memory pressure "
      "for /user.slice being 80.59% > 50.00% for > 20s with reclaim activity");
  ASSERT_TRUE(pressure.has_value());
  EXPECT_EQ(pressure->oom.task_memcg(), "/user.slice/app.scope");
  EXPECT_EQ(pressure->oom.oom_memcg(), "/user.slice");
  EXPECT_EQ(pressure->oom.killer(), "systemd-oomd");
  EXPECT_EQ(pressure->oom.pid(), 0);
  EXPECT_FALSE(pressure->oom.memcg());

  std::optional<UserspaceKill> swap = ParseSystemdOomdLine(
      "Killed /system.slice/a.service due to memory used (1) / total (2) and swap used (1) / "
      "total (2) being more than 90.00%");
  ASSERT_TRUE(swap.has_value());
  EXPECT_EQ(swap->oom.task_memcg(), "/system.slice/a.service");
  EXPECT_EQ(swap->oom.oom_memcg(), "");

  std::optional<UserspaceKill> marked = ParseSystemdOomdLine(
      "systemd-oomd[9]: Marked /system.slice/b.service for killing due to memory pressure for "
      "/system.slice being 70.00% > 60.00% for > 30s with reclaim activity");
  ASSERT_TRUE(marked.has_value());
  EXPECT_EQ(marked->oom.task_memcg(), "/system.slice/b.service");

  EXPECT_FALSE(ParseSystemdOomdLine("systemd[1]: u.service: systemd-oomd killed 12 process(es) "
                                    "in this unit.")
                   .has_value());
  EXPECT_FALSE(ParseSystemdOomdLine("systemd-oomd[9]: Killed /x without a reason").has_value());
}

}  // namespace
}  // namespace kfleet::agent

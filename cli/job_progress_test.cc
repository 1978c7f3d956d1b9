#include "cli/job_progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"

namespace kfleet::cli {
namespace {

using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1714564984);

int64_t At(double seconds) { return absl::ToUnixMillis(kT0 + absl::Seconds(seconds)); }

v1::CommandInfo* AddCommand(v1::Job& job, const std::string& id, const std::string& host,
                            int step) {
  v1::CommandInfo* c = job.add_commands();
  c->set_id(id);
  c->set_host_name(host);
  c->set_step_index(step);
  c->set_state(v1::COMMAND_PENDING);
  c->set_created_unix_ms(At(0));
  return c;
}

void Finish(v1::CommandInfo* c, v1::Verdict verdict, double started, double finished,
            const std::string& detail) {
  c->set_state(v1::COMMAND_FINISHED);
  c->set_started_unix_ms(At(started));
  c->set_finished_unix_ms(At(finished));
  c->mutable_result()->set_verdict(verdict);
  c->mutable_result()->set_wall_ms(absl::ToInt64Milliseconds(absl::Seconds(finished - started)));
  c->mutable_result()->set_detail(detail);
}

v1::Job BootJob() {
  v1::Job job;
  job.set_id("j-1");
  job.set_state(v1::JOB_RUNNING);
  job.set_created_unix_ms(At(0));
  job.mutable_spec()->set_name("boot linux");
  job.mutable_spec()->add_steps()->mutable_kernel_build();
  job.mutable_spec()->add_steps()->mutable_kernel_install();
  job.mutable_spec()->add_steps()->mutable_reboot();
  AddCommand(job, "c-b", "builder-1", 0);
  return job;
}

// Validates the non-terminal log: one line per change with the time it happened, ACCEPTED
// folded into PENDING, the detail once finished, and nothing again for an unchanged job.
TEST(ProgressLogTest, OneLinePerChange) {
  ProgressLog log;
  v1::Job job = BootJob();
  EXPECT_EQ(log.Update(job, kT0), "   0.0s  builder-1  kernel_build  PENDING\n");
  job.mutable_commands(0)->set_state(v1::COMMAND_ACCEPTED);
  EXPECT_EQ(log.Update(job, kT0 + absl::Seconds(1)), "");
  job.mutable_commands(0)->set_state(v1::COMMAND_RUNNING);
  job.mutable_commands(0)->set_started_unix_ms(At(12.3));
  EXPECT_EQ(log.Update(job, kT0 + absl::Seconds(20)),
            "  12.3s  builder-1  kernel_build  RUNNING\n");
  EXPECT_EQ(log.Update(job, kT0 + absl::Seconds(21)), "");
  Finish(job.mutable_commands(0), v1::PASS, 12.3, 97, "built kernel 6.1.158-kf in 85 s");
  v1::CommandInfo* waiting = AddCommand(job, "c-i", "", 1);
  EXPECT_EQ(log.Update(job, kT0 + absl::Seconds(98)),
            "  97.0s  builder-1  kernel_build  PASS  built kernel 6.1.158-kf in 85 s\n"
            "   0.0s  -  kernel_install  WAITING\n");
  waiting->set_host_name("guest-1");
  waiting->set_state(v1::COMMAND_RUNNING);
  waiting->set_started_unix_ms(0);  // not reported: the time kctl saw it
  EXPECT_EQ(log.Update(job, kT0 + absl::Seconds(99.5)),
            "  99.5s  guest-1  kernel_install  RUNNING\n");
}

// Validates the live table: elapsed time counting up for a running command, wall time for a
// finished one, the job's line on top, and lines cut to the terminal's width.
TEST(ProgressTableTest, LiveElapsedAndWidth) {
  v1::Job job = BootJob();
  Finish(job.mutable_commands(0), v1::PASS, 1, 86, "built kernel 6.1.158-kf in 85 s");
  v1::CommandInfo* install = AddCommand(job, "c-i", "guest-1", 1);
  install->set_state(v1::COMMAND_RUNNING);
  install->set_started_unix_ms(At(86));
  EXPECT_EQ(RenderProgressTable(job, false, kT0 + absl::Seconds(90), 0),
            "job j-1 (boot linux): running for 1m30s\n"
            "HOST        STEP             STATE     ELAPSED   DETAIL\n"
            "builder-1   kernel_build     PASS      1m25s     built kernel 6.1.158-kf in 85 s\n"
            "guest-1     kernel_install   RUNNING   4.0s      -\n");
  EXPECT_THAT(RenderProgressTable(job, false, kT0 + absl::Seconds(93), 0),
              HasSubstr("RUNNING   7.0s"));
  std::string narrow = RenderProgressTable(job, true, kT0 + absl::Seconds(90), 40);
  for (absl::string_view line : absl::StrSplit(narrow, '\n', absl::SkipEmpty())) {
    EXPECT_LE(line.size(), 40u) << line;
  }
  EXPECT_THAT(narrow, HasSubstr("COMMAND"));
  EXPECT_THAT(narrow, HasSubstr("...\n"));
}

// Validates the report of a passed boot: a line per command with its step, the kernel line,
// build, boot and total times, and the verdict.
TEST(JobReportTest, PassedBoot) {
  v1::Job job = BootJob();
  job.set_state(v1::JOB_DONE);
  job.set_verdict(v1::PASS);
  job.set_finished_unix_ms(At(112));
  v1::KernelBuild* build = job.mutable_build();
  build->set_identity("1a2b3c4d5e6f" + std::string(52, '0'));
  build->set_release("6.1.158-kf");
  build->set_builder("builder-1");
  build->set_build_ms(85400);
  Finish(job.mutable_commands(0), v1::PASS, 12.3, 97, "built kernel 6.1.158-kf in 85 s");
  Finish(AddCommand(job, "c-i", "guest-1", 1), v1::PASS, 98, 100, "installed");
  Finish(AddCommand(job, "c-r", "guest-1", 2), v1::PASS, 100, 112, "rebooted");
  EXPECT_EQ(RenderJobReport(job, kT0 + absl::Hours(1)),
            "builder-1 kernel_build: PASS (built kernel 6.1.158-kf in 85 s, 1m24s)\n"
            "guest-1 kernel_install: PASS (installed, 2.0s)\n"
            "guest-1 reboot: PASS (rebooted, 12s)\n"
            "kernel 6.1.158-kf, build 1a2b3c4d5e6f (built in 85 s) on builder-1\n"
            "build time: 1m24s (builder-1)\n"
            "boot time:  12s (guest-1)\n"
            "total time: 1m52s\n"
            "PASS\n");
}

// Validates the report of a failed boot on a reused build: "reused", the boot time marked with
// its verdict, skipped steps, and the verdict with the failing command's detail.
TEST(JobReportTest, BootFailedOnReusedBuild) {
  v1::Job job = BootJob();
  job.mutable_spec()->add_steps()->mutable_exec()->add_argv("true");
  job.set_state(v1::JOB_DONE);
  job.set_verdict(v1::BOOT_FAILED);
  job.set_finished_unix_ms(At(320));
  Finish(job.mutable_commands(0), v1::PASS, 1, 3, "kernel 6.1.158-kf reused (build 1a2b3c4d5e6f)");
  v1::KernelBuild* build = job.mutable_commands(0)->mutable_result()->mutable_kernel();
  build->set_identity("1a2b3c4d5e6f" + std::string(52, '0'));
  build->set_release("6.1.158-kf");
  build->set_reused(true);
  build->set_builder("builder-1");
  Finish(AddCommand(job, "c-i", "guest-1", 1), v1::PASS, 3, 5, "installed");
  Finish(AddCommand(job, "c-r", "guest-1", 2), v1::BOOT_FAILED, 5, 305,
         "guest-1 did not register again before the deadline (5m)");
  AddCommand(job, "c-e", "guest-1", 3)->set_state(v1::COMMAND_SKIPPED);
  std::string report = RenderJobReport(job, kT0 + absl::Hours(1));
  EXPECT_THAT(report, HasSubstr("guest-1 exec: SKIPPED (skipped: an earlier step failed)\n"));
  EXPECT_THAT(report, HasSubstr("kernel 6.1.158-kf, build 1a2b3c4d5e6f (reused) on builder-1\n"));
  EXPECT_THAT(report, HasSubstr("build time: 2.0s (builder-1, build reused)\n"));
  EXPECT_THAT(report, HasSubstr("boot time:  5m (guest-1, BOOT_FAILED)\n"));
  EXPECT_THAT(report, HasSubstr("total time: 5m20s\n"));
  EXPECT_THAT(report, ::testing::EndsWith(
                          "\nBOOT_FAILED: guest-1 did not register again before the deadline "
                          "(5m)\n"));
}

// Validates that a job without a build or reboot reports only what it has.
TEST(JobReportTest, ExecOnly) {
  v1::Job job;
  job.set_id("j-2");
  job.set_state(v1::JOB_DONE);
  job.set_verdict(v1::FAIL);
  job.mutable_spec()->add_steps()->mutable_exec()->add_argv("false");
  Finish(AddCommand(job, "c-1", "a", 0), v1::FAIL, 0, 0.4, "exited with status 1");
  EXPECT_EQ(RenderJobReport(job, kT0),
            "a exec: FAIL (exited with status 1, 0.4s)\n"
            "FAIL: exited with status 1\n");
}

}  // namespace
}  // namespace kfleet::cli

namespace kfleet::cli {
namespace {

v1::Job TestJob() {
  v1::Job job;
  job.set_id("j-t");
  job.set_state(v1::JOB_RUNNING);
  job.set_created_unix_ms(absl::ToUnixMillis(kT0));
  job.mutable_spec()->add_steps()->mutable_test()->set_suite("fstests");
  v1::CommandInfo* c = job.add_commands();
  c->set_id("c-t");
  c->set_host_name("guest-1");
  c->set_state(v1::COMMAND_RUNNING);
  c->set_started_unix_ms(absl::ToUnixMillis(kT0));
  return job;
}

// Validates the tests line: counts, ETA (or "?" when unknown), none without tests, no ETA once
// the job has ended.
TEST(TestProgressLineTest, CountsAndEta) {
  v1::Job job = TestJob();
  EXPECT_EQ(TestProgressLine(job), "");
  v1::TestProgress* t = job.mutable_tests();
  t->set_total(40);
  t->set_done(12);
  t->set_failed(2);
  t->set_skipped(1);
  t->set_reruns(3);
  t->set_eta_ms(90000);
  EXPECT_EQ(TestProgressLine(job), "tests 12/40  failed 2  skipped 1  re-runs 3  ETA 1m30s");
  t->set_eta_ms(-1);
  EXPECT_EQ(TestProgressLine(job), "tests 12/40  failed 2  skipped 1  re-runs 3  ETA ?");
  job.set_state(v1::JOB_DONE);
  EXPECT_EQ(TestProgressLine(job), "tests 12/40  failed 2  skipped 1  re-runs 3");
}

// Validates that the live table shows the tests line under the job's line.
TEST(TestProgressLineTest, InLiveTable) {
  v1::Job job = TestJob();
  job.mutable_tests()->set_total(4);
  job.mutable_tests()->set_done(1);
  job.mutable_tests()->set_eta_ms(30000);
  std::vector<std::string> lines =
      absl::StrSplit(RenderProgressTable(job, false, kT0 + absl::Seconds(5), 0), '\n');
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "job j-t: running for 5.0s");
  EXPECT_EQ(lines[1], "tests 1/4  failed 0  skipped 0  re-runs 0  ETA 30s");
  EXPECT_THAT(lines[2], ::testing::StartsWith("HOST"));
}

// Validates the log prints the tests line when the counts change, not when only the ETA does.
TEST(TestProgressLineTest, LogPrintsOnChange) {
  ProgressLog log;
  v1::Job job = TestJob();
  EXPECT_EQ(log.Update(job, kT0), "   0.0s  guest-1  test fstests  RUNNING\n");
  job.mutable_tests()->set_total(40);
  job.mutable_tests()->set_eta_ms(120000);
  EXPECT_EQ(log.Update(job, kT0 + absl::Seconds(2)),
            "   2.0s  tests 0/40  failed 0  skipped 0  re-runs 0  ETA 2m\n");
  job.mutable_tests()->set_eta_ms(110000);
  EXPECT_EQ(log.Update(job, kT0 + absl::Seconds(3)), "");
  job.mutable_tests()->set_done(1);
  job.mutable_tests()->set_failed(1);
  EXPECT_EQ(log.Update(job, kT0 + absl::Seconds(4.5)),
            "   4.5s  tests 1/40  failed 1  skipped 0  re-runs 0  ETA 1m50s\n");
}

// Validates that a job whose test step skipped every test ends its report with NOTHING_RAN and
// the command's reason, and that a sharded step's NOTHING_RAN (each command passed) says so.
TEST(JobProgressTest, ReportOfNothingRan) {
  v1::Job job;
  job.set_id("j-2");
  job.set_state(v1::JOB_DONE);
  job.set_verdict(v1::NOTHING_RAN);
  job.set_finished_unix_ms(At(60));
  v1::CommandInfo* c = AddCommand(job, "c-t", "guest-1", 0);
  c->mutable_step()->mutable_test()->set_suite("kselftest");
  Finish(c, v1::NOTHING_RAN, 1, 50,
         "nothing ran: 0 passed, 1 skipped (firmware:fw_run_tests.sh: no reason given, see the "
         "step's log)");
  EXPECT_THAT(RenderJobReport(job, kT0 + absl::Hours(1)),
              ::testing::EndsWith("\nNOTHING_RAN: nothing ran: 0 passed, 1 skipped "
                                  "(firmware:fw_run_tests.sh: no reason given, see the step's "
                                  "log)\n"));
  Finish(c, v1::PASS, 1, 50, "0 passed, 1 skipped");
  EXPECT_THAT(
      RenderJobReport(job, kT0 + absl::Hours(1)),
      ::testing::EndsWith("\nNOTHING_RAN: every test of a sharded test step was skipped\n"));
}

}  // namespace
}  // namespace kfleet::cli

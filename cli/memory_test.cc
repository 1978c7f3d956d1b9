// Memory limits and OOM kills of commands: exec --memory-max, and how results show OOM kills.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/job_progress.h"
#include "cli/job_view.h"
#include "cli/kctl_test_runner.h"
#include "common/memory_size.h"

namespace kfleet::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// Validates the sizes accepted (powers of 1024, either case) and the errors, which show the form.
TEST(KctlMemorySizeTest, Parse) {
  EXPECT_EQ(*ParseMemorySize("64M"), uint64_t{64} << 20);
  EXPECT_EQ(*ParseMemorySize("1G"), uint64_t{1} << 30);
  EXPECT_EQ(*ParseMemorySize("512k"), uint64_t{512} << 10);
  EXPECT_EQ(*ParseMemorySize("2T"), uint64_t{2} << 40);
  EXPECT_EQ(*ParseMemorySize("1048576"), uint64_t{1} << 20);
  EXPECT_EQ(CanonicalMemorySize("64m"), "64M");
  for (const char* bad : {"", "M", "64X", "64MB", "1.5G", "-1M", " 64M", "64 M", "0", "0M",
                          "99999999999999999999", "20000000000T"}) {
    absl::StatusOr<uint64_t> size = ParseMemorySize(bad);
    EXPECT_FALSE(size.ok()) << bad;
    EXPECT_THAT(size.status().message(), HasSubstr("e.g. 64M or 1G")) << bad;
  }
  EXPECT_EQ(ParseMemorySize("64X").status().message(),
            "invalid size \"64X\": write a number of bytes with an optional K, M, G or T suffix, "
            "e.g. 64M or 1G");
}

v1::CommandInfo Finished(const std::string& host, v1::Verdict verdict, int signal) {
  v1::CommandInfo c;
  c.set_id("c-" + host);
  c.set_host_name(host);
  c.set_state(v1::COMMAND_FINISHED);
  c.mutable_result()->set_verdict(verdict);
  c.mutable_result()->set_exit_code(signal ? -1 : 0);
  c.mutable_result()->set_signal(signal);
  c.mutable_result()->set_wall_ms(2100);
  c.mutable_result()->set_cgroup("v2");
  c.mutable_result()->set_memory_peak_bytes(int64_t{12} << 20);
  return c;
}

v1::CommandInfo OomKilled(const std::string& host) {
  v1::CommandInfo c = Finished(host, v1::FAIL, 9);
  c.mutable_result()->set_oom_killed(true);
  c.mutable_result()->set_oom_kills(1);
  c.mutable_result()->set_memory_max_bytes(int64_t{64} << 20);
  c.mutable_result()->set_memory_peak_bytes(int64_t{64} << 20);
  return c;
}

// Validates the OOM part of a command's summary line: its own process killed, or another of its
// cgroup; the peak memory in wide output only when no OOM text said it.
TEST(KctlOomDisplayTest, SummaryLines) {
  EXPECT_EQ(CommandSummary(OomKilled("host-a")),
            "host-a: FAIL (killed by SIGKILL, 2.1s) OOM-killed (limit 64 MiB, peak 64 MiB)");
  v1::CommandInfo child = Finished("host-b", v1::PASS, 0);
  child.mutable_result()->set_oom_kills(1);
  EXPECT_EQ(CommandSummary(child),
            "host-b: PASS (exit 0, 2.1s) 1 OOM kill in its cgroup (peak "
            "12 MiB)");
  child.mutable_result()->set_oom_kills(3);
  EXPECT_EQ(DescribeOom(child.result()), "3 OOM kills in its cgroup (peak 12 MiB)");
  // An agent that says it in the detail: not said twice, and no peak added in wide.
  v1::CommandInfo said = OomKilled("host-d");
  said.mutable_result()->set_detail(
      "OOM-killed: memory limit 64 MiB reached (peak 64.0 MiB, 1 OOM kill)");
  EXPECT_EQ(CommandSummary(said, "", /*wide=*/true),
            "host-d: FAIL (OOM-killed: memory limit 64 MiB reached (peak 64.0 MiB, 1 OOM kill), "
            "2.1s)");
  v1::CommandInfo fine = Finished("host-c", v1::PASS, 0);
  EXPECT_EQ(CommandSummary(fine), "host-c: PASS (exit 0, 2.1s)");
  EXPECT_EQ(CommandSummary(fine, "", /*wide=*/true), "host-c: PASS (exit 0, 2.1s, peak 12 MiB)");
  EXPECT_EQ(DescribeOom(fine.result()), "");
}

// Validates the job view: the step's limit, OOM in DETAIL, PEAK with -o wide.
TEST(KctlOomDisplayTest, JobView) {
  v1::Job job;
  job.set_id("j-1");
  job.set_state(v1::JOB_DONE);
  job.set_verdict(v1::FAIL);
  v1::Step* step = job.mutable_spec()->add_steps();
  step->mutable_exec()->add_argv("stress-ng");
  step->set_memory_max("64M");
  *job.add_commands() = OomKilled("guest-1");
  *job.add_commands() = Finished("guest-2", v1::PASS, 0);
  std::string view = RenderJobDetail(job, false, KctlTestRunner::Start(), absl::UTCTimeZone());
  EXPECT_THAT(view, HasSubstr("\n  0  exec stress-ng  (memory_max 64M)\n"));
  EXPECT_THAT(view, HasSubstr("\nguest-1   0      finished   FAIL      SIGKILL   2.1s   0s    -  "
                              "      OOM-killed (limit 64 MiB, peak 64 MiB)\n"));
  std::string wide = RenderJobDetail(job, true, KctlTestRunner::Start(), absl::UTCTimeZone());
  EXPECT_THAT(wide, HasSubstr("MAXRSS   PEAK     DETAIL\n"));
  EXPECT_THAT(wide, HasSubstr("   -        12 MiB   -\n"));

  std::string report = RenderJobReport(job, KctlTestRunner::Start());
  EXPECT_THAT(report, StartsWith("guest-1 exec: FAIL (killed by SIGKILL, 2.1s) OOM-killed (limit "
                                 "64 MiB, peak 64 MiB)\n"
                                 "guest-2 exec: PASS (exit 0, 2.1s)\n"));
  EXPECT_THAT(report, HasSubstr("\nFAIL: OOM-killed (limit 64 MiB, peak 64 MiB)\n"));
}

class KctlMemoryMaxTest : public ::testing::Test {
 protected:
  KctlMemoryMaxTest() {
    v1::Job job;
    job.set_id("j-1");
    job.set_state(v1::JOB_RUNNING);
    *job.add_commands() = OomKilled("guest-1");
    job.mutable_commands(0)->set_state(v1::COMMAND_PENDING);
    kctl_.service.job = job;
    job.set_state(v1::JOB_DONE);
    job.set_verdict(v1::FAIL);
    *job.mutable_commands(0) = OomKilled("guest-1");
    v1::LogData end;
    end.set_end(true);
    *end.mutable_job() = job;
    kctl_.service.logs = {end};
  }
  KctlTestRunner kctl_;
};

// Validates that exec --memory-max reaches the step, and that the host's line says OOM-killed.
TEST_F(KctlMemoryMaxTest, ExecSetsTheLimit) {
  EXPECT_EQ(kctl_.Run({"exec", "--all", "--memory-max", "64m", "--", "stress-ng"}), 1);
  EXPECT_EQ(kctl_.service.last_submit().spec().steps(0).memory_max(), "64M");
  EXPECT_EQ(kctl_.err(),
            "job j-1: guest-1\n"
            "guest-1: FAIL (killed by SIGKILL, 2.1s) OOM-killed (limit 64 MiB, peak 64 MiB)\n");

  EXPECT_EQ(kctl_.Run({"exec", "--all", "--", "true"}), 1);
  EXPECT_EQ(kctl_.service.last_submit().spec().steps(0).memory_max(), "");
}

// Validates that a bad --memory-max names the flag and an example, and connects to nothing.
TEST_F(KctlMemoryMaxTest, ExecRefusesBadSizes) {
  EXPECT_EQ(kctl_.Run({"exec", "--all", "--memory-max", "64MB", "--", "true"}), 2);
  EXPECT_EQ(kctl_.err(),
            "kctl: exec: --memory-max: invalid size \"64MB\": write a number of bytes with an "
            "optional K, M, G or T suffix, e.g. 64M or 1G\n");
  EXPECT_EQ(kctl_.Run({"exec", "--all", "--memory-max", "0", "--", "true"}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("(the limit must be above 0)"));
  EXPECT_THAT(kctl_.service.calls(), IsEmpty());
}

}  // namespace
}  // namespace kfleet::cli

#include "cli/format.h"

#include <gtest/gtest.h>

#include "cli/job_view.h"
#include "cli/jobs_command.h"

namespace kfleet::cli {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1714564984);  // 2024-05-01 12:03:04 UTC

// Validates coarse ages as LAST-SEEN and AGE show them.
TEST(FormatTest, Ages) {
  EXPECT_EQ(FormatAgo(absl::ToUnixMillis(kNow - absl::Seconds(3)), kNow), "3s ago");
  EXPECT_EQ(FormatAgo(absl::ToUnixMillis(kNow - absl::Minutes(5) - absl::Seconds(9)), kNow),
            "5m ago");
  EXPECT_EQ(FormatAgo(absl::ToUnixMillis(kNow - absl::Hours(30)), kNow), "30h ago");
  EXPECT_EQ(FormatAgo(absl::ToUnixMillis(kNow - absl::Hours(24 * 9)), kNow), "9d ago");
  EXPECT_EQ(FormatAgo(absl::ToUnixMillis(kNow + absl::Seconds(2)), kNow), "0s ago");
  EXPECT_EQ(FormatAgo(0, kNow), "never");
}

// Validates human-readable sizes.
TEST(FormatTest, Bytes) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(12 << 20), "12 MiB");
  EXPECT_EQ(FormatBytes(8ull * 1000 * 1000 * 1000), "7.5 GiB");
  EXPECT_EQ(FormatBytes(1048575), "1024 KiB");
}

// Validates times in a given zone, and the empty time.
TEST(FormatTest, Times) {
  EXPECT_EQ(FormatTime(absl::ToUnixMillis(kNow), absl::UTCTimeZone()), "2024-05-01 12:03:04");
  EXPECT_EQ(FormatTime(0, absl::UTCTimeZone()), "");
  EXPECT_EQ(FormatMillis(1234), "1.2s");
  EXPECT_EQ(FormatMillis(185000), "3m5s");
  EXPECT_EQ(FormatMillis(400), "0.4s");
  EXPECT_EQ(FormatMillis(50), "50ms");
}

// Validates labels sorted by key, and the enum names.
TEST(FormatTest, LabelsAndNames) {
  v1::Host h;
  (*h.mutable_labels())["role"] = "guest";
  (*h.mutable_labels())["pool"] = "local";
  EXPECT_EQ(FormatLabels(h.labels()), "pool=local,role=guest");
  EXPECT_EQ(HostStateName(v1::ONLINE), "online");
  EXPECT_EQ(VerdictName(v1::BOOT_FAILED), "BOOT_FAILED");
  EXPECT_EQ(VerdictName(v1::VERDICT_UNSPECIFIED), "");
  EXPECT_EQ(LogStreamName(v1::KMSG), "kmsg");
  EXPECT_EQ(*ParseLogStream("console"), v1::CONSOLE);
  EXPECT_EQ(ParseLogStream("stdot").status().message(),
            "unknown log stream \"stdot\" (did you mean \"stdout\"?) (expected stdout, stderr, "
            "console or kmsg)");
}

v1::CommandInfo Finished(const std::string& host, v1::Verdict verdict, int exit_code,
                         int64_t wall_ms, const std::string& detail = "") {
  v1::CommandInfo c;
  c.set_host_name(host);
  c.set_state(v1::COMMAND_FINISHED);
  c.mutable_result()->set_verdict(verdict);
  c.mutable_result()->set_exit_code(exit_code);
  c.mutable_result()->set_wall_ms(wall_ms);
  c.mutable_result()->set_detail(detail);
  return c;
}

// Validates the per-host summary lines exec prints.
TEST(FormatTest, CommandSummary) {
  EXPECT_EQ(CommandSummary(Finished("host-a", v1::PASS, 0, 1200)), "host-a: PASS (exit 0, 1.2s)");
  EXPECT_EQ(CommandSummary(Finished("host-b", v1::FAIL, 3, 400, "exited with status 3")),
            "host-b: FAIL (exited with status 3, 0.4s)");
  EXPECT_EQ(CommandSummary(Finished("host-b", v1::FAIL, 3, 400)), "host-b: FAIL (exit 3, 0.4s)");
  v1::CommandInfo killed = Finished("h", v1::TIMEOUT, -1, 30000);
  killed.mutable_result()->set_signal(9);
  EXPECT_EQ(CommandSummary(killed), "h: TIMEOUT (killed by SIGKILL, 30s)");
  v1::CommandInfo pending;
  pending.set_host_name("h");
  pending.set_state(v1::COMMAND_PENDING);
  pending.mutable_result()->set_verdict(v1::CANCELLED);
  EXPECT_EQ(CommandSummary(pending), "h: CANCELLED (never started)");
}

// Validates what cancel says, before and after the job ended.
TEST(FormatTest, DescribeCancel) {
  v1::Job job;
  job.set_id("j-1");
  job.set_state(v1::JOB_RUNNING);
  v1::CommandInfo* running = job.add_commands();
  running->set_state(v1::COMMAND_RUNNING);
  running->set_cancel_requested(true);
  *job.add_commands() = Finished("h", v1::PASS, 0, 1);
  EXPECT_EQ(DescribeCancel(job), "cancelled job j-1: 1 command");

  job.clear_commands();
  job.set_state(v1::JOB_DONE);
  job.set_verdict(v1::PASS);
  EXPECT_EQ(DescribeCancel(job), "job j-1 had already ended: PASS");
}

}  // namespace
}  // namespace kfleet::cli

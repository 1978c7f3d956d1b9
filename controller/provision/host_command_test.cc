#include "controller/provision/host_command.h"

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::controller::provision {
namespace {

using ::testing::HasSubstr;

// Validates that output of both streams and the exit code come back.
TEST(HostCommandTest, CollectsOutputAndExitCode) {
  absl::StatusOr<HostCommandResult> r =
      RunHostCommand({"sh", "-c", "echo out; echo err >&2; exit 3"}, absl::Seconds(10));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->stopped);
  EXPECT_THAT(r->output, HasSubstr("out\n"));
  EXPECT_THAT(r->output, HasSubstr("err\n"));
}

// Validates that the command is killed as soon as the awaited text shows up.
TEST(HostCommandTest, StopsWhenUntilIsSeen) {
  absl::Time start = absl::Now();
  absl::StatusOr<HostCommandResult> r =
      RunHostCommand({"sh", "-c", "echo READY; sleep 30"}, absl::Seconds(20), "READY");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stopped);
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// Validates that the deadline kills the whole process group, grandchildren included.
TEST(HostCommandTest, TimeoutKillsGroup) {
  absl::Time start = absl::Now();
  absl::StatusOr<HostCommandResult> r =
      RunHostCommand({"sh", "-c", "sleep 30 & sleep 30"}, absl::Milliseconds(300));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stopped);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// Validates that a command that closes its output is still held to the deadline.
TEST(HostCommandTest, TimeoutAfterOutputClosed) {
  absl::Time start = absl::Now();
  absl::StatusOr<HostCommandResult> r =
      RunHostCommand({"sh", "-c", "exec >/dev/null 2>&1; sleep 30"}, absl::Milliseconds(300));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->stopped);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// Validates the errors for a missing program and an empty argv.
TEST(HostCommandTest, Errors) {
  EXPECT_EQ(RunHostCommand({"kfleet-no-such-program"}, absl::Seconds(5)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(RunHostCommand({}, absl::Seconds(5)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kfleet::controller::provision

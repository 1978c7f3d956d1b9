#include "agent/exec/oom_score.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "agent/exec/process.h"
#include "agent/exec/stdout_sink.h"

namespace kfleet::agent {
namespace {

namespace v1 = ::kfleet::v1;

// Validates that the agent can protect itself from the OOM killer and that a command it starts
// afterwards does not inherit the protection: with the agent at -1000, the command runs at 0.
TEST(OomScoreTest, CommandIsNotProtectedLikeTheAgent) {
  absl::StatusOr<int> before = OomScoreAdj();
  ASSERT_TRUE(before.ok()) << before.status();
  absl::Status protect = ProtectFromOomKiller();
  if (absl::IsPermissionDenied(protect)) GTEST_SKIP() << protect;
  ASSERT_TRUE(protect.ok()) << protect;
  absl::StatusOr<int> protected_value = OomScoreAdj();

  StdoutSink sink;
  absl::StatusOr<std::unique_ptr<Process>> process =
      Process::Start(RunSpec{{"cat", "/proc/self/oom_score_adj"}}, &sink);
  v1::CommandResult result;
  if (process.ok()) result = (*process)->Wait();
  // Back to what it was, for the tests after this one; raising it needs no privilege.
  std::ofstream("/proc/self/oom_score_adj") << *before;

  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ(protected_value.value_or(0), -1000);
  EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
  EXPECT_EQ(sink.Stdout(), "0\n");
  EXPECT_EQ(OomScoreAdj().value_or(-1), *before);
}

}  // namespace
}  // namespace kfleet::agent

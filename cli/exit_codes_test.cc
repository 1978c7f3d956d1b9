#include "cli/exit_codes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/fleet_client.h"

namespace kfleet::cli {
namespace {

// Validates the verdict -> exit code table that scripts rely on.
TEST(ExitCodesTest, Verdicts) {
  EXPECT_EQ(ExitCodeForVerdict(v1::PASS), 0);
  EXPECT_EQ(ExitCodeForVerdict(v1::FAIL), 1);
  EXPECT_EQ(ExitCodeForVerdict(v1::BOOT_FAILED), 4);
  EXPECT_EQ(ExitCodeForVerdict(v1::TIMEOUT), 5);
  EXPECT_EQ(ExitCodeForVerdict(v1::INFRA_ERROR), 6);
  EXPECT_EQ(ExitCodeForVerdict(v1::CANCELLED), 7);
  // An unknown verdict is never a pass.
  EXPECT_EQ(ExitCodeForVerdict(v1::VERDICT_UNSPECIFIED), 6);
}

// Validates that an attached exit code wins over the status code.
TEST(ExitCodesTest, Statuses) {
  EXPECT_EQ(ExitCodeForStatus(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeForStatus(absl::InvalidArgumentError("x")), 2);
  EXPECT_EQ(ExitCodeForStatus(absl::NotFoundError("x")), 8);
  EXPECT_EQ(ExitCodeForStatus(absl::UnavailableError("x")), 3);
  EXPECT_EQ(ExitCodeForStatus(WithExitCode(absl::InternalError("x"), 3)), 3);
  EXPECT_EQ(ExitCodeForStatus(WithExitCode(absl::NotFoundError("x"), 2)), 2);
}

// Validates how RPC errors read and which exit code each gets.
TEST(ExitCodesTest, RpcErrors) {
  absl::Status s =
      RpcError("ListHosts", grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"),
               "127.0.0.1:7400");
  EXPECT_EQ(s.message(),
            "cannot reach the controller at 127.0.0.1:7400 (connection refused): start it, or "
            "point kctl elsewhere with --controller HOST:PORT or KFLEET_CONTROLLER");
  EXPECT_EQ(ExitCodeForStatus(s), 3);

  s = RpcError("GetJob", grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded"),
               "h:1");
  EXPECT_EQ(ExitCodeForStatus(s), 3);

  s = RpcError("GetJob", grpc::Status(grpc::StatusCode::NOT_FOUND, "no job j-1"), "h:1");
  EXPECT_EQ(s.message(), "GetJob: no job j-1");
  EXPECT_EQ(ExitCodeForStatus(s), 8);

  s = RpcError("SubmitJob", grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad"), "h:1");
  EXPECT_EQ(ExitCodeForStatus(s), 2);

  s = RpcError("SubmitJob", grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no hosts"), "h:1");
  EXPECT_EQ(s.message(), "SubmitJob: no hosts");
  EXPECT_EQ(ExitCodeForStatus(s), 2);

  s = RpcError("ListJobs", grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not admin"), "h:1");
  EXPECT_EQ(ExitCodeForStatus(s), 3);
}

}  // namespace
}  // namespace kfleet::cli

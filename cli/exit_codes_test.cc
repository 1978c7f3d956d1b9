#include "cli/exit_codes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "cli/command_spec.h"
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
  EXPECT_EQ(ExitCodeForVerdict(v1::NOTHING_RAN), 10);
  // An unknown verdict is never a pass.
  EXPECT_EQ(ExitCodeForVerdict(v1::VERDICT_UNSPECIFIED), 6);
}

// Validates that a test step that ran nothing has its own exit code, distinct from every other,
// the last one, with a meaning that --help and the man page list.
TEST(ExitCodesTest, NothingRanIsDistinct) {
  EXPECT_EQ(kExitLast, kExitNothingRan);
  for (v1::Verdict v : {v1::PASS, v1::FAIL, v1::BOOT_FAILED, v1::TIMEOUT, v1::INFRA_ERROR,
                        v1::CANCELLED, v1::VERDICT_UNSPECIFIED}) {
    EXPECT_NE(ExitCodeForVerdict(v), kExitNothingRan) << v1::Verdict_Name(v);
  }
  EXPECT_EQ(ExitCodeMeaning(kExitNothingRan),
            "a test step ran no test: every test was skipped (NOTHING_RAN)");
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

  s = RpcError("ListJobs", grpc::Status(grpc::StatusCode::INTERNAL, "disk on fire"), "h:1");
  EXPECT_EQ(ExitCodeForStatus(s), 3);
}

// Validates that the controller refusing kctl's identity or role exits 9 and says what to do,
// while a local file's permission error stays a usage error.
TEST(ExitCodesTest, Denied) {
  absl::Status s =
      RpcError("CreateToken",
               grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "role viewer may not"), "h:1");
  EXPECT_EQ(s.message(),
            "CreateToken: refused by the controller at h:1 (role viewer may not): the role of this "
            "certificate does not allow it; kctl whoami shows who the controller takes kctl for");
  EXPECT_EQ(ExitCodeForStatus(s), kExitDenied);
  EXPECT_EQ(kExitDenied, 9);

  s = RpcError("ListHosts",
               grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no client certificate"), "h:1");
  EXPECT_EQ(s.message(),
            "ListHosts: the controller at h:1 did not accept kctl's identity (no client "
            "certificate): kctl needs a certificate of the controller's CA, `cert:` and `key:` in "
            "the config file; an admin makes one with kctl user create");
  EXPECT_EQ(ExitCodeForStatus(s), 9);

  EXPECT_EQ(ExitCodeForStatus(absl::UnauthenticatedError("x")), 9);
  EXPECT_EQ(ExitCodeForStatus(absl::PermissionDeniedError("open /root/x: Permission denied")), 2);
  EXPECT_EQ(ExitCodeMeaning(9), "refused: not authenticated, or the role does not allow it");
}

// Validates the hint for a failed TLS handshake, in the words gRPC uses for it, and that other
// unreachable controllers do not get it.
TEST(ExitCodesTest, TlsHandshakeHint) {
  constexpr char kHint[] =
      "the TLS handshake failed: the controller refused this certificate (revoked, expired, or "
      "from another CA), or its certificate is not signed by the CA in the config; check "
      "`ca:`/`cert:`/`key:` in the config file, or ask an admin for a new one (kctl user create)";
  for (const char* message :
       {"failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:7400: Ssl "
        "handshake failed: SSL_ERROR_SSL: error:0A000086:SSL routines::certificate verify failed",
        "Handshake failed", "tlsv13 alert certificate revoked",
        "error:0A000418:SSL routines::tlsv1 alert unknown ca"}) {
    absl::Status s =
        RpcError("ListHosts", grpc::Status(grpc::StatusCode::UNAVAILABLE, message), "h:1");
    EXPECT_EQ(s.message(),
              absl::StrCat("cannot reach the controller at h:1 (", message, "): ", kHint))
        << message;
    EXPECT_EQ(ExitCodeForStatus(s), 3);
  }
  absl::Status s = RpcError(
      "ListHosts", grpc::Status(grpc::StatusCode::UNAVAILABLE, "Connection refused"), "h:1");
  EXPECT_THAT(std::string(s.message()), ::testing::Not(::testing::HasSubstr("TLS")));

  // What gRPC says when the controller refused the certificate after the handshake, or kctl
  // spoke plaintext to a TLS controller.
  s = RpcError("ListHosts",
               grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "failed to connect to all addresses; last error: UNAVAILABLE: "
                            "ipv4:127.0.0.1:7400: Socket closed"),
               "h:1");
  EXPECT_THAT(std::string(s.message()),
              ::testing::EndsWith("Socket closed): the controller closed the connection: it may "
                                  "have refused this certificate (revoked or expired; an admin "
                                  "makes a new one with kctl user create), or it speaks TLS and "
                                  "kctl plaintext (--insecure), or it was stopping"));
  EXPECT_EQ(ExitCodeForStatus(s), 3);
}

}  // namespace
}  // namespace kfleet::cli

// kctl's exit codes (docs/kctl.md, "EXIT STATUS"), and how verdicts and errors map onto them.
#ifndef KFLEET_CLI_EXIT_CODES_H_
#define KFLEET_CLI_EXIT_CODES_H_

#include "absl/status/status.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::cli {

// Scripts rely on these numbers: extend, never renumber.
enum ExitCode : int {
  kExitOk = 0,           // success, or the job passed
  kExitFail = 1,         // the job failed: a command, kernel or test failed
  kExitUsage = 2,        // usage error or bad input
  kExitUnreachable = 3,  // the controller cannot be reached, or an RPC failed
  kExitBootFailed = 4,   // the requested kernel did not come up
  kExitTimeout = 5,      // a step ran past its timeout
  kExitInfraError = 6,   // agent lost, provider failed, ...
  kExitCancelled = 7,    // the job was cancelled
  kExitNotFound = 8,     // unknown host, job or command
  kExitDenied = 9,       // refused: not authenticated, or the role does not allow it
  kExitNothingRan = 10,  // a test step ran no test: every test was skipped (NOTHING_RAN)
};

// The largest exit code kctl uses.
inline constexpr int kExitLast = kExitNothingRan;

// The exit code for a finished job's verdict. VERDICT_UNSPECIFIED (the controller did not say)
// counts as an infrastructure error, never as a pass.
int ExitCodeForVerdict(v1::Verdict verdict);

// Returns `status` carrying `code` as the exit code kctl ends with when it reports the error.
absl::Status WithExitCode(absl::Status status, int code);

// The exit code for a failed operation: the one attached by WithExitCode, else by status code
// (NotFound 8; Unavailable and DeadlineExceeded 3; Unauthenticated 9; InvalidArgument and other
// local errors 2). PermissionDenied without an attached code is a local file's (2): RpcError
// attaches 9 to the controller's.
int ExitCodeForStatus(const absl::Status& status);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_EXIT_CODES_H_

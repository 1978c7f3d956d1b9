#include "cli/exit_codes.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"

namespace kfleet::cli {
namespace {

constexpr char kExitCodePayload[] = "type.kfleet.dev/kctl.exit_code";

}  // namespace

int ExitCodeForVerdict(v1::Verdict verdict) {
  switch (verdict) {
    case v1::PASS:
      return kExitOk;
    case v1::FAIL:
      return kExitFail;
    case v1::BOOT_FAILED:
      return kExitBootFailed;
    case v1::TIMEOUT:
      return kExitTimeout;
    case v1::CANCELLED:
      return kExitCancelled;
    case v1::NOTHING_RAN:
      return kExitNothingRan;
    case v1::INFRA_ERROR:
    default:
      return kExitInfraError;
  }
}

absl::Status WithExitCode(absl::Status status, int code) {
  if (!status.ok()) status.SetPayload(kExitCodePayload, absl::Cord(std::to_string(code)));
  return status;
}

int ExitCodeForStatus(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (auto payload = status.GetPayload(kExitCodePayload)) {
    int code;
    if (absl::SimpleAtoi(std::string(*payload), &code)) return code;
  }
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    case absl::StatusCode::kUnauthenticated:
      return kExitDenied;
    default:
      return kExitUsage;
  }
}

}  // namespace kfleet::cli

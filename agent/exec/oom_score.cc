#include "agent/exec/oom_score.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/exec/cgroup_fs.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

constexpr char kOomScoreAdj[] = "/proc/self/oom_score_adj";

}  // namespace

absl::Status ProtectFromOomKiller() {
  absl::Status s = WriteControl(kOomScoreAdj, "-1000");
  if (absl::IsPermissionDenied(s)) {
    return absl::PermissionDeniedError(
        absl::StrCat(s.message(), " (oom_score_adj -1000 needs CAP_SYS_RESOURCE)"));
  }
  return s;
}

absl::StatusOr<int> OomScoreAdj() {
  ASSIGN_OR_RETURN(std::string text, ReadFile(kOomScoreAdj, 64));
  int value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value)) {
    return absl::InternalError(
        absl::StrCat(kOomScoreAdj, ": expected a number, got \"", text, "\""));
  }
  return value;
}

}  // namespace kfleet::agent

#include "controller/security/access_rpc.h"

#include "absl/strings/str_cat.h"
#include "common/duration.h"
#include "common/ids.h"

namespace kfleet::controller {
namespace {

constexpr int kMaxLabels = 64;

}  // namespace

absl::Status CheckLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.size() > kMaxLabels) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", kMaxLabels, " labels"));
  }
  for (const auto& [k, v] : labels) {
    if (!IsValidId(k) || (!v.empty() && !IsValidId(v))) {
      return absl::InvalidArgumentError(
          absl::StrCat("label \"", k.substr(0, 64), "=", v.substr(0, 64),
                       "\" is not KEY=VALUE of 1-64 characters of [A-Za-z0-9._-] each"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> TtlOf(const std::string& text, absl::Duration fallback,
                                     absl::Duration limit, absl::string_view what) {
  if (text.empty()) return fallback;
  absl::StatusOr<absl::Duration> d = ParseDuration(text);
  if (!d.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", d.status().message()));
  if (*d <= absl::ZeroDuration() || *d > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be positive and at most ", ShortDuration(limit)));
  }
  return *d;
}

}  // namespace kfleet::controller

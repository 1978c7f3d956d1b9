#include "controller/metrics/label_names.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace kfleet::controller {
namespace {

bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

}  // namespace

bool IsValidLabelName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name[0]) || absl::StartsWith(name, "__")) return false;
  return std::all_of(name.begin(), name.end(), IsNameChar);
}

std::string SanitizeLabelName(absl::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  if (name.empty() || absl::ascii_isdigit(name[0])) out.push_back('_');
  for (char c : name) out.push_back(IsNameChar(c) ? c : '_');
  return out;
}

LabelPairs TargetLabels(absl::string_view host_name,
                        const std::map<std::string, std::string>& host_labels) {
  LabelPairs out;
  out.reserve(host_labels.size() + 2);
  out.emplace_back(std::string(kHostLabel), std::string(host_name));
  out.emplace_back(std::string(kInstanceLabel), std::string(host_name));
  for (const auto& [name, value] : host_labels) {
    std::string sanitized = SanitizeLabelName(name);
    if (sanitized == kHostLabel || sanitized == kInstanceLabel) continue;
    if (absl::StartsWith(sanitized, "__")) continue;
    bool taken = std::any_of(out.begin(), out.end(),
                             [&](const auto& label) { return label.first == sanitized; });
    if (taken) continue;
    out.emplace_back(std::move(sanitized), value);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace kfleet::controller

#include "cli/host_selector.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kfleet::cli {

absl::Status MergeLabels(absl::string_view arg,
                         google::protobuf::Map<std::string, std::string>* labels) {
  for (absl::string_view pair : absl::StrSplit(arg, ',')) {
    pair = absl::StripAsciiWhitespace(pair);
    size_t eq = pair.find('=');
    if (eq == absl::string_view::npos || eq == 0 || eq + 1 == pair.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("-l: \"", pair, "\" is not KEY=VALUE; write e.g. -l pool=local or ",
                       "-l pool=local,role=guest"));
    }
    std::string key(pair.substr(0, eq));
    std::string value(pair.substr(eq + 1));
    auto [it, inserted] = labels->insert({key, value});
    if (!inserted && it->second != value) {
      return absl::InvalidArgumentError(
          absl::StrCat("-l: label \"", key, "\" is given twice, as \"", it->second, "\" and \"",
                       value, "\"; a host has one value per label"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::HostSelector> BuildHostSelector(bool all, const std::vector<std::string>& hosts,
                                                   const std::vector<std::string>& labels) {
  int kinds = (all ? 1 : 0) + (hosts.empty() ? 0 : 1) + (labels.empty() ? 0 : 1);
  if (kinds != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        kinds == 0 ? "no hosts chosen" : "--all, --host and -l cannot be combined",
        ": choose the hosts with exactly one of --all, --host NAME (repeatable) or -l KEY=VALUE "
        "(repeatable)"));
  }
  v1::HostSelector selector;
  if (all) selector.set_all(true);
  std::set<std::string> seen;
  for (const std::string& arg : hosts) {
    for (absl::string_view name : absl::StrSplit(arg, ',')) {
      name = absl::StripAsciiWhitespace(name);
      if (name.empty()) {
        return absl::InvalidArgumentError("--host: empty host name; write e.g. --host host-a");
      }
      if (seen.insert(std::string(name)).second) selector.add_names(std::string(name));
    }
  }
  for (const std::string& arg : labels) {
    if (absl::Status s = MergeLabels(arg, selector.mutable_labels()); !s.ok()) return s;
  }
  return selector;
}

}  // namespace kfleet::cli

// The host selector of `kctl exec` (and later reboot, boot): --all, --host NAME or -l KEY=VALUE.
#ifndef KFLEET_CLI_HOST_SELECTOR_H_
#define KFLEET_CLI_HOST_SELECTOR_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/map.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

// Adds "k=v" or "k=v,k2=v2" to `labels`. Giving one key two different values is an error.
absl::Status MergeLabels(absl::string_view arg,
                         google::protobuf::Map<std::string, std::string>* labels);

// Exactly one of `all`, `hosts` (each "NAME" or "N1,N2") or `labels` (each as MergeLabels takes)
// must be given. Errors name the flag and the fix.
absl::StatusOr<v1::HostSelector> BuildHostSelector(bool all, const std::vector<std::string>& hosts,
                                                   const std::vector<std::string>& labels);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_HOST_SELECTOR_H_

// Prometheus label names: which are valid, and how a host's own labels (free-form, set by users
// in pool configs and agent flags) become the labels of its series and of its file_sd target.
#ifndef KFLEET_CONTROLLER_METRICS_LABEL_NAMES_H_
#define KFLEET_CONTROLLER_METRICS_LABEL_NAMES_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace kfleet::controller {

// (name, value) pairs sorted by name, without duplicate names.
using LabelPairs = std::vector<std::pair<std::string, std::string>>;

// The labels every host series carries: both hold the host's name. `instance` is what dashboards
// made for node_exporter select on; `host` is kfleet's own.
inline constexpr absl::string_view kInstanceLabel = "instance";
inline constexpr absl::string_view kHostLabel = "host";

// True for [a-zA-Z_][a-zA-Z0-9_]* not starting with "__" (reserved by Prometheus).
bool IsValidLabelName(absl::string_view name);

// `name` with every character outside [a-zA-Z0-9_] replaced by '_', and '_' put in front of a
// leading digit or of an empty name: "kfleet.io/pool" -> "kfleet_io_pool".
std::string SanitizeLabelName(absl::string_view name);

// The labels of a host's series and file_sd target: instance=<host_name>, host=<host_name>, and
// `host_labels` with sanitized names. A host label is left out when its sanitized name is
// `instance` or `host`, starts with "__" (Prometheus gives those a meaning: __scheme__,
// __metrics_path__...), or equals that of a host label earlier in name order.
LabelPairs TargetLabels(absl::string_view host_name,
                        const std::map<std::string, std::string>& host_labels);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_METRICS_LABEL_NAMES_H_

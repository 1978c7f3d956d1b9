// Random identifiers: hosts, jobs, commands.
#ifndef KFLEET_COMMON_IDS_H_
#define KFLEET_COMMON_IDS_H_

#include <string>

#include "absl/strings/string_view.h"

namespace kfleet {

// `prefix` followed by 16 random hex digits from the OS random source, e.g. "j-3f2a...".
std::string NewId(absl::string_view prefix);

// True if `id` is 1 to 64 characters of [A-Za-z0-9._-]: safe as a file name and in a URL.
bool IsValidId(absl::string_view id);

}  // namespace kfleet

#endif  // KFLEET_COMMON_IDS_H_

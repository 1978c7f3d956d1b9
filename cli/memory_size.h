// Memory sizes as people write them for a command's cgroup limit (`kctl exec --memory-max`, a job
// spec step's memory_max): "64M", "1G", "512K", "1073741824".
#ifndef KFLEET_CLI_MEMORY_SIZE_H_
#define KFLEET_CLI_MEMORY_SIZE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet::cli {

// Parses a positive number of bytes, optionally followed by one of K, M, G, T (powers of 1024, as
// cgroup's memory.max reads them; lower case too). The error says what was wrong and shows the
// accepted forms, without naming the flag or field (callers add that).
absl::StatusOr<uint64_t> ParseMemorySize(absl::string_view text);

// The form the agent is sent: digits and an upper-case suffix ("64m" -> "64M").
// Precondition: ParseMemorySize(text) succeeded.
std::string CanonicalMemorySize(absl::string_view text);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_MEMORY_SIZE_H_

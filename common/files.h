// Small file helpers with durable writes.
#ifndef KFLEET_COMMON_FILES_H_
#define KFLEET_COMMON_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet {

// Reads a whole file of at most `max_bytes`.
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = 16 << 20);

// Writes `data` to `path` atomically and durably: a temporary file, fsync, rename, fsync of the
// directory. A crash leaves either the old or the new content.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data);

// mkdir -p.
absl::Status MakeDirs(const std::string& path);

// fsync of a directory, so that a rename or creation in it survives a crash.
absl::Status SyncDir(const std::string& dir);

// An absl::Status for a failed system call: "what: strerror(errno)", coded by errno.
absl::Status ErrnoStatus(absl::string_view what, int err);

}  // namespace kfleet

#endif  // KFLEET_COMMON_FILES_H_

// The provider's file work on the hypervisor host: guest directories qemu can reach, sparse disk
// files, removal, and reading the tail of a console log.
#ifndef KFLEET_CONTROLLER_PROVISION_GUEST_FILES_H_
#define KFLEET_CONTROLLER_PROVISION_GUEST_FILES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kfleet::controller::provision {

// mkdir -p, then mode 0755: under qemu:///system qemu runs as its own user and must reach the
// guest's files.
absl::Status MakeSharedDir(const std::string& dir);

// The first directory on the way to `path` (`path` itself included if it is a directory) that
// others may not search (no o+x), or "" if there is none. qemu running as its own user cannot
// open files below such a directory.
std::string UnsearchableDir(const std::string& path);

// A new file of `size` bytes that occupies no disk until written, mode 0644. AlreadyExists if
// `path` exists.
absl::Status MakeSparseFile(const std::string& path, uint64_t size);

// Copies `from` to `to` (mode 0644) through a temporary file and a rename, so that a reader of
// `to` sees the old or the new content, never a mix.
absl::Status CopyFileAtomic(const std::string& from, const std::string& to);

// rm -rf; OK if `path` does not exist.
absl::Status RemoveTree(const std::string& path);

// The last `max_bytes` of the file (all of it if it is shorter). NotFound if it does not exist.
absl::StatusOr<std::string> ReadTail(const std::string& path, size_t max_bytes);

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_GUEST_FILES_H_

// The filesystem statistics behind node_filesystem_*: statvfs(2) behind a seam, so that tests of
// the filesystem metrics do not depend on the machine they run on.
#ifndef KFLEET_AGENT_COLLECT_STATFS_H_
#define KFLEET_AGENT_COLLECT_STATFS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace kfleet::agent {

// What statvfs reports, in its units: blocks of `block_size` bytes (f_frsize) and inodes.
struct FsStats {
  uint64_t block_size = 0;
  uint64_t blocks = 0;        // f_blocks
  uint64_t blocks_free = 0;   // f_bfree
  uint64_t blocks_avail = 0;  // f_bavail: free to unprivileged users
  uint64_t files = 0;         // f_files
  uint64_t files_free = 0;    // f_ffree
};

// Statistics of the filesystem mounted at `path`. May block as long as the filesystem does (a
// dead NFS server); must be safe to call from several threads at once.
using StatFsFunc = std::function<absl::StatusOr<FsStats>(const std::string& path)>;

// statvfs(2). Errors carry errno's code (NotFound, PermissionDenied, ...) and name the path.
absl::StatusOr<FsStats> RealStatFs(const std::string& path);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_COLLECT_STATFS_H_

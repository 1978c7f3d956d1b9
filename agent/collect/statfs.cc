#include "agent/collect/statfs.h"

#include <sys/statvfs.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace kfleet::agent {

absl::StatusOr<FsStats> RealStatFs(const std::string& path) {
  struct statvfs st;
  int rc;
  do {
    rc = ::statvfs(path.c_str(), &st);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return ErrnoStatus(absl::StrCat("statvfs ", path), errno);
  FsStats out;
  // f_blocks and friends count fragments of f_frsize bytes (POSIX); Linux fills f_frsize with
  // f_bsize for filesystems that have no fragments.
  out.block_size = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
  out.blocks = st.f_blocks;
  out.blocks_free = st.f_bfree;
  out.blocks_avail = st.f_bavail;
  out.files = st.f_files;
  out.files_free = st.f_ffree;
  return out;
}

}  // namespace kfleet::agent

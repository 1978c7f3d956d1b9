#include "controller/provision/guest_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet::controller::provision {

absl::Status MakeSharedDir(const std::string& dir) {
  RETURN_IF_ERROR(MakeDirs(dir));
  if (::chmod(dir.c_str(), 0755) != 0) return ErrnoStatus(absl::StrCat("chmod ", dir), errno);
  return absl::OkStatus();
}

std::string UnsearchableDir(const std::string& path) {
  std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  std::filesystem::path dir;
  for (const auto& part : p) {
    dir /= part;
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) break;
    if ((st.st_mode & S_IXOTH) == 0) return dir.string();
  }
  return "";
}

absl::Status MakeSparseFile(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(absl::StrCat("create ", path), errno);
  // The umask may have taken bits away.
  int rc = ::fchmod(fd, 0644) == 0 ? ::ftruncate(fd, static_cast<off_t>(size)) : -1;
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(absl::StrCat("size ", path), err);
  return absl::OkStatus();
}

absl::Status CopyFileAtomic(const std::string& from, const std::string& to) {
  const std::string tmp = to + ".tmp";
  std::error_code ec;
  std::filesystem::copy_file(from, tmp, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) {
    return ErrnoStatus(absl::StrCat("copy ", from, " to ", tmp), ec.value());
  }
  if (::chmod(tmp.c_str(), 0644) != 0 || ::rename(tmp.c_str(), to.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(absl::StrCat("install ", to), err);
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("remove ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadTail(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(absl::StrCat("stat ", path), err);
  }
  size_t size = static_cast<size_t>(st.st_size);
  off_t offset = static_cast<off_t>(size > max_bytes ? size - max_bytes : 0);
  std::string out(size - static_cast<size_t>(offset), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

}  // namespace kfleet::controller::provision

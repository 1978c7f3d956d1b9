#include "cli/user_bundle.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace kfleet::cli {
namespace {

constexpr mode_t kFileMode = 0600;
constexpr mode_t kDirMode = 0700;

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(absl::StrCat("write ", path), errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return ErrnoStatus(absl::StrCat("fsync ", path), errno);
  return absl::OkStatus();
}

// Renames `from` to `to` unless `to` exists. link() stands in on file systems without
// RENAME_NOREPLACE.
absl::Status RenameNoReplace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return absl::OkStatus();
  }
  int err = errno;
  if (err == EINVAL || err == ENOSYS) {
    if (::link(from.c_str(), to.c_str()) == 0) {
      ::unlink(from.c_str());
      return absl::OkStatus();
    }
    err = errno;
  }
  if (err == EEXIST) return absl::AlreadyExistsError(absl::StrCat(to, " exists"));
  return ErrnoStatus(absl::StrCat("rename ", from, " to ", to), err);
}

absl::Status MakeBundleDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " exists and is not a directory: choose another --out DIR"));
  }
  if (errno != ENOENT) return ErrnoStatus(absl::StrCat("stat ", dir), errno);
  std::string parent = DirOf(dir);
  if (parent != "." && parent != "/") {
    if (absl::Status s = MakeDirs(parent); !s.ok()) return s;
  }
  if (::mkdir(dir.c_str(), kDirMode) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("mkdir ", dir), errno);
  }
  return absl::OkStatus();
}

}  // namespace

BundleFiles BundleFilesFor(absl::string_view dir, absl::string_view name) {
  std::string d(dir);
  while (d.size() > 1 && absl::EndsWith(d, "/")) d.pop_back();
  std::string prefix = d == "/" ? d : absl::StrCat(d, "/");
  return BundleFiles{.dir = d,
                     .ca = absl::StrCat(prefix, "ca.crt"),
                     .cert = absl::StrCat(prefix, name, ".crt"),
                     .key = absl::StrCat(prefix, name, ".key"),
                     .config = absl::StrCat(prefix, "kctl.yaml")};
}

absl::Status CheckBundleFilesFree(const BundleFiles& files) {
  for (const std::string* path : {&files.ca, &files.cert, &files.key, &files.config}) {
    struct stat st;
    if (::lstat(path->c_str(), &st) == 0) {
      return absl::AlreadyExistsError(
          absl::StrCat(*path,
                       " exists, and kctl never writes over credentials: remove it, or choose "
                       "another directory with --out DIR"));
    }
  }
  return absl::OkStatus();
}

std::string BundleConfigText(const UserBundle& bundle) {
  std::string text = absl::StrCat(
      "# kctl configuration for user ", bundle.name, " (role ", bundle.role,
      ") of the kfleet controller at ", bundle.controller,
      "\n# (kctl --config THIS_FILE). Relative paths are relative to this file's directory.\n",
      "controller: ", bundle.controller, "\n", "ca: ca.crt\n", "cert: ", bundle.name, ".crt\n",
      "key: ", bundle.name, ".key\n");
  if (!bundle.server_name.empty())
    absl::StrAppend(&text, "server_name: ", bundle.server_name, "\n");
  return text;
}

absl::Status WriteNewFile(const std::string& path, absl::string_view data, mode_t mode) {
  std::string tmp = absl::StrCat(path, ".tmp-XXXXXX");
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600 from the start
  if (fd < 0) return ErrnoStatus(absl::StrCat("create ", tmp), errno);
  absl::Status s;
  if (::fchmod(fd, mode) != 0) s = ErrnoStatus(absl::StrCat("chmod ", tmp), errno);
  if (s.ok()) s = WriteAll(fd, data, tmp);
  ::close(fd);
  if (s.ok()) s = RenameNoReplace(tmp, path);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncDir(DirOf(path));
}

absl::Status WriteBundle(const UserBundle& bundle, const BundleFiles& files) {
  if (absl::Status s = MakeBundleDir(files.dir); !s.ok()) return s;
  // kctl.yaml last, so that it never names a file that is not there.
  const std::pair<const std::string*, std::string> writes[] = {
      {&files.key, bundle.key_pem},
      {&files.cert, bundle.cert_pem},
      {&files.ca, bundle.ca_pem},
      {&files.config, BundleConfigText(bundle)}};
  std::vector<const std::string*> written;
  for (const auto& [path, data] : writes) {
    absl::Status s = WriteNewFile(*path, data, kFileMode);
    if (!s.ok()) {
      for (const std::string* p : written) ::unlink(p->c_str());
      return s;
    }
    written.push_back(path);
  }
  return absl::OkStatus();
}

}  // namespace kfleet::cli

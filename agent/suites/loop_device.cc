#include "agent/suites/loop_device.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace kfleet::agent {
namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

absl::Status Fix(absl::string_view what, int err) {
  absl::Status s = ErrnoStatus(what, err);
  if (err == EPERM || err == EACCES || err == ENOENT || err == ENODEV) {
    return absl::FailedPreconditionError(absl::StrCat(
        s.message(),
        ": loop devices need root and the loop driver (modprobe loop); or set TEST_DEV and "
        "SCRATCH_DEV in the step's fstests config"));
  }
  return s;
}

}  // namespace

absl::StatusOr<LoopDevice> LoopDevice::Create(const std::string& backing, uint64_t size_bytes) {
  Fd file{::open(backing.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
  if (file.fd < 0) return ErrnoStatus(absl::StrCat("create ", backing), errno);
  if (::ftruncate(file.fd, static_cast<off_t>(size_bytes)) != 0) {
    return ErrnoStatus(absl::StrCat("truncate ", backing), errno);
  }
  Fd control{::open("/dev/loop-control", O_RDWR | O_CLOEXEC)};
  if (control.fd < 0) return Fix("open /dev/loop-control", errno);
  // Another process may take the free device between the two calls: try a few.
  for (int attempt = 0; attempt < 8; ++attempt) {
    int n = ::ioctl(control.fd, LOOP_CTL_GET_FREE);
    if (n < 0) return Fix("LOOP_CTL_GET_FREE", errno);
    std::string path = absl::StrCat("/dev/loop", n);
    Fd dev{::open(path.c_str(), O_RDWR | O_CLOEXEC)};
    if (dev.fd < 0) return Fix(absl::StrCat("open ", path), errno);
    if (::ioctl(dev.fd, LOOP_SET_FD, file.fd) != 0) {
      if (errno == EBUSY) continue;
      return Fix(absl::StrCat("LOOP_SET_FD ", path), errno);
    }
    struct loop_info64 info;
    std::memset(&info, 0, sizeof(info));
    std::strncpy(reinterpret_cast<char*>(info.lo_file_name), backing.c_str(), LO_NAME_SIZE - 1);
    ::ioctl(dev.fd, LOOP_SET_STATUS64, &info);  // only names the file in losetup -l
    return LoopDevice(std::move(path));
  }
  return absl::UnavailableError("no free loop device after 8 attempts");
}

LoopDevice::~LoopDevice() {
  if (path_.empty()) return;
  Fd dev{::open(path_.c_str(), O_RDWR | O_CLOEXEC)};
  if (dev.fd >= 0) ::ioctl(dev.fd, LOOP_CLR_FD, 0);
}

absl::StatusOr<std::vector<std::string>> MkfsArgv(absl::string_view fstype,
                                                  const std::string& device) {
  if (fstype.empty()) fstype = "xfs";
  for (char c : fstype) {
    if (!absl::ascii_isalnum(c) && c != '_') {
      return absl::InvalidArgumentError(
          absl::StrCat("fstype \"", fstype, "\" cannot name a mkfs program: use [A-Za-z0-9_]"));
    }
  }
  std::vector<std::string> argv = {absl::StrCat("mkfs.", fstype)};
  // Each mkfs has its own flag to overwrite an existing file system without asking.
  if (fstype == "xfs" || fstype == "btrfs" || fstype == "f2fs") {
    argv.insert(argv.end(), {"-f", "-q"});
  } else if (absl::StartsWith(fstype, "ext")) {
    argv.insert(argv.end(), {"-F", "-q"});
  }
  argv.push_back(device);
  return argv;
}

}  // namespace kfleet::agent

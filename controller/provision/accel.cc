#include "controller/provision/accel.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/log.h"
#include "controller/provision/host_command.h"

namespace kfleet::controller::provision {
namespace {

constexpr absl::Duration kProbeTimeout = absl::Seconds(15);

bool KvmOpens() {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// True if a guest under KVM gets far enough to print its banner.
bool KvmBootsGuest(const std::string& kernel) {
  std::vector<std::string> argv = {"qemu-system-x86_64",
                                   "-accel",
                                   "kvm",
                                   "-machine",
                                   "q35",
                                   "-cpu",
                                   "host",
                                   "-m",
                                   "256",
                                   "-nodefaults",
                                   "-no-user-config",
                                   "-display",
                                   "none",
                                   "-no-reboot"};
  std::string banner;
  if (!kernel.empty()) {
    argv.insert(argv.end(),
                {"-serial", "stdio", "-kernel", kernel, "-append", "console=ttyS0 panic=-1"});
    banner = "Linux version";
  } else {
    argv.insert(argv.end(),
                {"-chardev", "stdio,id=dbg", "-device", "isa-debugcon,iobase=0x402,chardev=dbg"});
    banner = "SeaBIOS";
  }
  absl::StatusOr<HostCommandResult> r = RunHostCommand(argv, kProbeTimeout, banner);
  if (!r.ok()) {
    LogWarning(absl::StrCat("KVM probe could not run: ", r.status().ToString()));
    return false;
  }
  if (r->output.find(banner) != std::string::npos) return true;
  LogWarning(absl::StrCat("/dev/kvm opens but a KVM guest printed nothing in ",
                          absl::FormatDuration(kProbeTimeout),
                          "; using TCG. qemu said: ", r->output.substr(0, 400)));
  return false;
}

}  // namespace

std::string DetectAccel(const std::string& kernel, const std::string& cache_dir) {
  if (!KvmOpens()) return kAccelTcg;
  const std::string cache = cache_dir.empty() ? "" : absl::StrCat(cache_dir, "/accel");
  if (!cache.empty()) {
    absl::StatusOr<std::string> cached = ReadFile(cache, 64);
    if (cached.ok()) {
      absl::string_view v = absl::StripAsciiWhitespace(*cached);
      if (v == kAccelKvm || v == kAccelTcg) return std::string(v);
    }
  }
  std::string accel = KvmBootsGuest(kernel) ? kAccelKvm : kAccelTcg;
  LogInfo(absl::StrCat("accelerator: ", accel, " (probed)"));
  if (!cache.empty()) {
    absl::Status s = MakeDirs(cache_dir);
    if (s.ok()) s = WriteFileAtomic(cache, accel + "\n");
    if (!s.ok()) LogWarning(absl::StrCat("cannot cache the accelerator: ", s.ToString()));
  }
  return accel;
}

}  // namespace kfleet::controller::provision

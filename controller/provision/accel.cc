#include "controller/provision/accel.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <vector>

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

// The user libvirt runs qemu as: `user = "..."` in qemu.conf, else Debian's default.
std::string QemuUser(const std::string& qemu_conf) {
  absl::StatusOr<std::string> conf = ReadFile(qemu_conf, 1 << 20);
  if (conf.ok()) {
    static const std::regex kUser(R"re((^|\n)\s*user\s*=\s*"([^"]+)")re");
    std::smatch m;
    if (std::regex_search(*conf, m, kUser)) return m[2].str();
  }
  return "libvirt-qemu";
}

}  // namespace

bool QemuUserMayOpenKvm(const std::string& qemu_conf, const std::string& kvm_path) {
  struct stat st;
  if (::stat(kvm_path.c_str(), &st) != 0) return false;
  const std::string user = QemuUser(qemu_conf);
  if (user == "root" || user == "+0") return true;
  passwd pw;
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return true;  // no such user: qemu runs as whoever starts it
  }
  auto rw = [&](mode_t r, mode_t w) { return (st.st_mode & r) != 0 && (st.st_mode & w) != 0; };
  if (st.st_uid == pw.pw_uid) return rw(S_IRUSR, S_IWUSR);
  int n = 64;
  std::vector<gid_t> groups(n);
  if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) {
    groups.resize(n);
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) n = 0;
  }
  groups.resize(n);
  for (gid_t g : groups) {
    if (g == st.st_gid) return rw(S_IRGRP, S_IWGRP);
  }
  return rw(S_IROTH, S_IWOTH);
}

namespace {

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

std::string DetectAccel(const std::string& kernel, const std::string& cache_dir,
                        const std::string& qemu_conf) {
  if (!KvmOpens()) return kAccelTcg;
  if (!QemuUserMayOpenKvm(qemu_conf, "/dev/kvm")) {
    LogWarning(absl::StrCat("/dev/kvm is not open to ", QemuUser(qemu_conf),
                            ", the user libvirt runs qemu as: guests run under TCG. To use KVM: "
                            "chgrp kvm /dev/kvm && chmod 0660 /dev/kvm (what Debian's udev "
                            "rules do)"));
    return kAccelTcg;
  }
  const std::string cache = cache_dir.empty() ? "" : absl::StrCat(cache_dir, "/accel");
  const std::string boot_cache = absl::StrCat(kAccelBootCacheDir, "/accel");
  for (const std::string& path : {cache, boot_cache}) {
    if (path.empty()) continue;
    absl::StatusOr<std::string> cached = ReadFile(path, 64);
    if (!cached.ok()) continue;
    absl::string_view v = absl::StripAsciiWhitespace(*cached);
    if (v == kAccelKvm || v == kAccelTcg) {
      if (path == boot_cache && !cache.empty()) (void)WriteFileAtomic(cache, absl::StrCat(v, "\n"));
      return std::string(v);
    }
  }
  std::string accel = KvmBootsGuest(kernel) ? kAccelKvm : kAccelTcg;
  LogInfo(absl::StrCat("accelerator: ", accel, " (probed)"));
  if (!cache.empty()) {
    absl::Status s = MakeDirs(cache_dir);
    if (s.ok()) s = WriteFileAtomic(cache, accel + "\n");
    if (!s.ok()) LogWarning(absl::StrCat("cannot cache the accelerator: ", s.ToString()));
  }
  // Best effort: a controller without the right to write there probes once per state dir.
  if (MakeDirs(kAccelBootCacheDir).ok()) (void)WriteFileAtomic(boot_cache, accel + "\n");
  return accel;
}

}  // namespace kfleet::controller::provision

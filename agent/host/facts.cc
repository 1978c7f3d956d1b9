#include "agent/host/facts.h"

#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/status_macros.h"

namespace kfleet::agent {

v1::HostFacts CollectFacts() {
  v1::HostFacts f;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) f.set_hostname(host);
  struct utsname u;
  if (uname(&u) == 0) {
    f.set_kernel_release(u.release);
    f.set_arch(u.machine);
  }
  if (auto v = ReadFile("/proc/version", 4096); v.ok()) {
    f.set_kernel_version(std::string(absl::StripTrailingAsciiWhitespace(*v)));
  }
  if (auto os = ReadFile("/etc/os-release", 65536); os.ok()) {
    for (absl::string_view line : absl::StrSplit(*os, '\n')) {
      if (absl::ConsumePrefix(&line, "PRETTY_NAME=")) {
        f.set_os(std::string(absl::StripSuffix(absl::StripPrefix(line, "\""), "\"")));
      }
    }
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus > 0) f.set_cpus(static_cast<uint32_t>(cpus));
  struct sysinfo si;
  if (sysinfo(&si) == 0) f.set_memory_bytes(static_cast<uint64_t>(si.totalram) * si.mem_unit);
  f.set_boot_loader(DetectBootLoader(
      ReadFile("/proc/cmdline", 65536).value_or(""),
      ::access("/boot/grub/grub.cfg", R_OK) == 0 && (::access("/usr/sbin/grub-reboot", X_OK) == 0 ||
                                                     ::access("/sbin/grub-reboot", X_OK) == 0)));
  return f;
}

std::string DetectBootLoader(const std::string& cmdline, bool has_grub) {
  // A provider that boots the kernel itself says so on the command line it gives.
  if (KernelCmdlineValue(cmdline, "kfleet.boot") == "direct") return "direct";
  return has_grub ? "grub" : "";
}

std::string BootId() {
  auto id = ReadFile("/proc/sys/kernel/random/boot_id", 256);
  return id.ok() ? std::string(absl::StripAsciiWhitespace(*id)) : "";
}

absl::StatusOr<std::string> LoadOrCreateHostId(const std::string& state_dir) {
  std::string path = state_dir + "/host_id";
  absl::StatusOr<std::string> existing = ReadFile(path, 256);
  if (existing.ok()) {
    std::string id(absl::StripAsciiWhitespace(*existing));
    if (!IsValidId(id)) {
      return absl::DataLossError(path +
                                 " does not hold a valid host id: remove it to register "
                                 "this agent as a new host");
    }
    return id;
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();
  std::string id = NewId("h-");
  RETURN_IF_ERROR(WriteFileAtomic(path, id + "\n"));
  return id;
}

std::string KernelCmdlineValue(const std::string& cmdline, const std::string& key) {
  for (absl::string_view word :
       absl::StrSplit(cmdline, absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&word, key) && absl::ConsumePrefix(&word, "="))
      return std::string(word);
  }
  return "";
}

}  // namespace kfleet::agent

// Where guests come from. A Provider creates, destroys and power-cycles guests and hands out their
// console log; libvirt (libvirt_provider.h) and user commands (exec_provider.h) implement it, and
// tests fake it. Implementations are thread-safe; calls may block (run them off gRPC threads).
#ifndef KFLEET_CONTROLLER_PROVISION_PROVIDER_H_
#define KFLEET_CONTROLLER_PROVISION_PROVIDER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kfleet::controller::provision {

// An extra virtual disk (test and scratch devices for fstests and blktests).
struct DiskSpec {
  std::string name;  // e.g. "test", "scratch": file name part; the guest sees /dev/vdb, /dev/vdc...
  uint64_t size_mib = 1024;
};

// fw_cfg entries kfleet's guest images read at boot (in the guest:
// /sys/firmware/qemu_fw_cfg/by_name/NAME/raw, readable by root only): the guest's own enrolment
// token, and the CA certificate (PEM) of the controller it is to trust.
inline constexpr char kTokenFwCfgName[] = "opt/kfleet/token";
inline constexpr char kCaCertFwCfgName[] = "opt/kfleet/ca.pem";

// Everything needed to bring one guest up.
struct GuestSpec {
  std::string name;  // unique; the domain name and the host name the agent registers under
  std::string pool;
  int cpus = 1;
  uint64_t memory_mib = 512;
  std::vector<DiskSpec> disks;
  // Direct kernel boot (the `tiny` image): kernel and initramfs paths on the hypervisor host.
  std::string kernel;
  std::string initrd;
  // Disk boot (the `debian` image): a base qcow2 used through a copy-on-write overlay.
  std::string base_image;
  // Kernel command line for direct boot, without the kfleet.* settings (the provider adds those).
  std::string cmdline;
  // kfleet.* settings passed to the guest's agent (controller, host_id, name, labels, ...): on the
  // kernel command line for direct boot, through the image's config otherwise.
  std::map<std::string, std::string> settings;
  // fw_cfg entries for the guest, name -> content: kTokenFwCfgName and kCaCertFwCfgName when the
  // controller enrols its guests. Names are 5 to 55 of [a-z0-9./_-] starting with "opt/", content
  // is 1 byte to 64 KiB of text (see ValidateGuestSpec). The libvirt provider hands them to qemu
  // (<sysinfo type='fwcfg'>); the exec provider passes the token and CA to its create command as
  // "enrolment". The contents are secrets: never logged, never put on the kernel command line or
  // in an error message. They are not baked into any image: each guest gets its own.
  std::map<std::string, std::string> fw_cfg;
  // The controller's port on the hypervisor's loopback; the guest reaches it, and nothing else, at
  // kGuestControllerAddress.
  int controller_port = 0;
};

// The only address a guest can reach: qemu's user-mode network forwards it to the controller.
inline constexpr char kGuestControllerIp[] = "10.0.2.100";

struct GuestInfo {
  std::string name;
  bool running = false;
  std::string accel;         // "kvm" or "tcg"
  std::string console_path;  // file the serial console is written to
};

class Provider {
 public:
  virtual ~Provider() = default;

  // Creates and starts the guest. AlreadyExists if a guest of that name exists.
  virtual absl::StatusOr<GuestInfo> Create(const GuestSpec& spec) = 0;
  // Stops the guest and removes everything created for it (domain, overlays, disks, console
  // file). OK if it does not exist.
  virtual absl::Status Destroy(const std::string& name) = 0;
  // Hard reset: the guest boots again from scratch (its disks keep their content).
  virtual absl::Status PowerCycle(const std::string& name) = 0;
  // For direct kernel boot: boot `kernel`/`initrd` from the next (re)boot on; empty keeps the
  // current one.
  virtual absl::Status SetKernel(const std::string& name, const std::string& kernel,
                                 const std::string& initrd) = 0;
  // Boots the guest once (a hard reset) with `extra_cmdline` appended to its kernel command line
  // and, when given, `kernel`/`initrd` instead of its usual boot files; any later power-cycle
  // boots the usual configuration again, as a boot loader's one-shot entry would. Unimplemented
  // where the provider cannot (disk-booted guests, exec).
  virtual absl::Status BootOnce(const std::string& name, const std::string& extra_cmdline,
                                const std::string& kernel = "", const std::string& initrd = "") = 0;
  // The last `max_bytes` of the guest's serial console.
  virtual absl::StatusOr<std::string> ConsoleLog(const std::string& name, size_t max_bytes) = 0;
  // Guests this provider has (of any pool).
  virtual absl::StatusOr<std::vector<GuestInfo>> List() = 0;
};

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_PROVIDER_H_

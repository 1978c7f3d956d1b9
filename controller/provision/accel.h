// How guests run on this hypervisor host: KVM when it really works, else TCG (emulation).
#ifndef KFLEET_CONTROLLER_PROVISION_ACCEL_H_
#define KFLEET_CONTROLLER_PROVISION_ACCEL_H_

#include <string>

namespace kfleet::controller::provision {

inline constexpr char kAccelKvm[] = "kvm";
inline constexpr char kAccelTcg[] = "tcg";

// Returns "kvm" or "tcg", deciding by trying, on the local host:
//  - /dev/kvm cannot be opened read-write, by this process or by the user libvirt runs qemu as
//    (`user` in `qemu_conf`, default libvirt-qemu): "tcg" at once, nothing cached (so loading kvm
//    or fixing its permissions later is noticed);
//  - else a probe: qemu-system-x86_64 -accel kvm boots `kernel` (or, if `kernel` is empty, just
//    the firmware) for at most 15 s; "kvm" if the guest prints its banner ("Linux version" on the
//    serial console, or SeaBIOS's on its debug port), else "tcg" (a /dev/kvm that opens but hangs
//    guests, as with broken nested virtualization). The answer is cached in `cache_dir`/accel and
//    returned from there afterwards; delete that file to probe again. An empty `cache_dir`
//    disables that cache. The answer is also kept for the machine's current boot in
//    kAccelBootCacheDir/accel (/run is emptied at boot), so that each new state dir (every
//    controller of a test run) does not probe for 15 s again; it is read when `cache_dir` has
//    none.
// Blocks for up to ~15 s on a first probe. Not for concurrent calls with the same `cache_dir`
// (the caller serializes them).
// True if the user libvirt runs qemu as (`user = "..."` in `qemu_conf`, default libvirt-qemu)
// may open `kvm_path` read-write by its owner, group (its groups included) and mode. A /dev/kvm
// only root may open (no udev to hand it to the kvm group) passes root's probe, yet every guest
// libvirt starts would fail with "Could not access KVM kernel module: Permission denied". True
// when that user does not exist (qemu then runs as whoever starts it).
bool QemuUserMayOpenKvm(const std::string& qemu_conf, const std::string& kvm_path);

inline constexpr char kAccelBootCacheDir[] = "/run/kfleet";

std::string DetectAccel(const std::string& kernel, const std::string& cache_dir,
                        const std::string& qemu_conf = "/etc/libvirt/qemu.conf");

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_ACCEL_H_

// Guests as libvirt domains: any libvirt URI, persistent domains marked by kfleet <metadata>,
// per-guest files under a work directory, KVM when it works, else TCG.
//
// Files: WORK_DIR/NAME/ holds console.log (serial console, appended across boots),
// overlay.qcow2 (copy-on-write over spec.base_image, from `qemu-img create -f qcow2 -F qcow2 -b`),
// disk-DISK.img (sparse raw files for spec.disks) and SetKernel's copies. WORK_DIR and the guest
// directories are world-readable so that qemu, which runs as its own user under qemu:///system,
// reaches them; libvirt (dynamic_ownership) chowns the files a guest uses to that user while it
// runs, spec.kernel and spec.initrd included.
// Files are made on this host, so a remote URI needs WORK_DIR to be the same path on the
// hypervisor (a shared mount); ConsoleLog reads the local file.
//
// fw_cfg: spec.settings and spec.fw_cfg (the guest's enrolment token and CA) are entries of the
// domain's <sysinfo type='fwcfg'>. libvirt passes them to qemu as `-fw_cfg name=...,string=...`,
// so on the hypervisor host they are readable by whoever reads the definition, qemu's command line
// or libvirt's domain log; kfleet itself never logs them.
//
// Network: the guest's only link is qemu user-mode networking with restrict=on, where
// kGuestControllerIp:controller_port is forwarded to options.relay_command, started by qemu for
// each connection (so the agent can reconnect). qemu forks that command, so libvirt's seccomp
// sandbox must allow it: seccomp_sandbox = 0 in qemu.conf (scripts/libvirt.sh sets it). Open checks
// this and Create fails with FailedPrecondition while it is not so.
//
// Kernels: SetKernel copies the kernel and initrd into the guest's directory (boot-vmlinuz,
// boot-initrd.img; for a local hypervisor) and rewrites the persistent definition only. A running
// guest keeps its kernel across its own reboots (qemu reboots in place); the new kernel boots at
// the next PowerCycle, which is destroy + start from the persistent definition. So to boot a new
// kernel: SetKernel, then PowerCycle.
#ifndef KFLEET_CONTROLLER_PROVISION_LIBVIRT_PROVIDER_H_
#define KFLEET_CONTROLLER_PROVISION_LIBVIRT_PROVIDER_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controller/provision/domain_xml.h"
#include "controller/provision/libvirt_handles.h"
#include "controller/provision/provider.h"

namespace kfleet::controller::provision {

struct LibvirtOptions {
  std::string uri = "qemu:///system";
  std::string work_dir = "/var/lib/kfleet/guests";  // created if missing; holds one dir a guest
  // What qemu runs per guest connection to the controller; "{port}" becomes the controller port.
  std::string relay_command = "socat - TCP:127.0.0.1:{port}";
  // "kvm", "tcg", or empty: decide on the first Create (DetectAccel for a local URI; for a remote
  // one, whether libvirt there offers kvm).
  std::string accel;
  std::string machine = "q35";  // "q35" or "pc"
  // Guest NAME is the domain domain_prefix + NAME (see DomainOptions::domain_prefix).
  std::string domain_prefix;
};

// Thread-safe: calls on different guests run concurrently; calls on the same guest are
// serialized. All calls block on libvirt and the disk (run them off gRPC threads).
class LibvirtProvider : public Provider {
 public:
  // Connects to options.uri and prepares options.work_dir. Unavailable if libvirt does not
  // answer; InvalidArgument for bad options; FailedPrecondition if qemu, running as its own user
  // under qemu:///system, could not reach work_dir (a parent without o+x, such as a mkdtemp
  // directory or /root).
  static absl::StatusOr<std::unique_ptr<LibvirtProvider>> Open(const LibvirtOptions& options);

  // Defines (persistent) and starts the domain. On failure nothing is left behind. NotFound for
  // a kernel, initrd or base image that does not exist here, FailedPrecondition for one qemu
  // could not reach (see Open).
  absl::StatusOr<GuestInfo> Create(const GuestSpec& spec) override;
  // Also cleans the work directory of a guest whose domain is already gone. FailedPrecondition
  // for a domain of that name that is not a kfleet guest (it is left alone).
  absl::Status Destroy(const std::string& name) override;
  // Destroy (hard power off) if running, then start: boots the persistent definition.
  absl::Status PowerCycle(const std::string& name) override;
  // Rewrites the persistent definition (see the top of this file). FailedPrecondition for a guest
  // that boots from disk.
  absl::Status SetKernel(const std::string& name, const std::string& kernel,
                         const std::string& initrd) override;
  absl::Status BootOnce(const std::string& name, const std::string& extra_cmdline,
                        const std::string& kernel, const std::string& initrd) override;
  absl::StatusOr<std::string> ConsoleLog(const std::string& name, size_t max_bytes) override;
  // Domains carrying kfleet metadata, of any pool.
  absl::StatusOr<std::vector<GuestInfo>> List() override;

  // The guest's directory under work_dir.
  std::string GuestDir(const std::string& name) const;

 private:
  LibvirtProvider(const LibvirtOptions& options, ConnectHandle conn, bool local,
                  bool relay_forbidden);

  // Holds a guest's name for the length of one call, so calls on one guest do not interleave.
  class GuestLock;

  // The connection, reopened first if libvirtd went away. Hold conn_mu_ (reader) while using it.
  absl::Status EnsureConnected() ABSL_LOCKS_EXCLUDED(conn_mu_);
  // Looks `name` up and checks it is ours.
  absl::StatusOr<DomainHandle> LookupGuest(const std::string& name)
      ABSL_SHARED_LOCKS_REQUIRED(conn_mu_);
  absl::StatusOr<std::string> Accel(const std::string& kernel) ABSL_SHARED_LOCKS_REQUIRED(conn_mu_);
  // Whether libvirt would run qemu with a seccomp filter that forbids spawning the relay.
  static bool RelayForbidden(virConnectPtr conn);
  absl::Status MakeGuestFiles(const GuestSpec& spec, DomainOptions* options);
  // For a local hypervisor: `path` exists and qemu can reach it.
  absl::Status CheckReadable(const std::string& what, const std::string& path) const;

  const LibvirtOptions options_;
  const bool local_;  // the hypervisor is this host

  absl::Mutex conn_mu_;
  ConnectHandle conn_ ABSL_GUARDED_BY(conn_mu_);
  bool relay_forbidden_ ABSL_GUARDED_BY(conn_mu_);

  absl::Mutex accel_mu_ ABSL_ACQUIRED_AFTER(conn_mu_);
  std::string accel_ ABSL_GUARDED_BY(accel_mu_);

  absl::Mutex names_mu_;
  std::set<std::string> busy_ ABSL_GUARDED_BY(names_mu_);
};

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_LIBVIRT_PROVIDER_H_

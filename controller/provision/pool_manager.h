// Runs the pools: brings guests up and down (by hand and with the queue), power-cycles guests
// that do not come back from a reboot or stay offline, and copies each guest's serial console into
// the console log of the command running on it. Tick() does the slow work (provider calls, image
// builds) and runs on the controller's reconcile thread, never on a gRPC thread.
#ifndef KFLEET_CONTROLLER_PROVISION_POOL_MANAGER_H_
#define KFLEET_CONTROLLER_PROVISION_POOL_MANAGER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/fleet/change_feed.h"
#include "controller/fleet/fleet.h"
#include "controller/logs/log_store.h"
#include "controller/provision/pool_config.h"
#include "controller/provision/provider.h"
#include "controller/store/store.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::controller::provision {

// What a guest boots: kernel + initrd (direct boot) or a base disk image.
struct BootImage {
  std::string kernel;
  std::string initrd;
  std::string base_image;
  std::string cmdline;
};

// What a new guest's agent enrols with: a token of its own and the CA certificate (PEM) to trust.
// Secrets: never logged.
struct GuestEnrolment {
  std::string token;
  std::string ca_pem;
};

class PoolManager {
 public:
  struct Deps {
    Store* store;
    LogStore* logs;
    Fleet* fleet;
    ChangeFeed* feed;
    // Makes the provider of a pool (called once per pool, on first use).
    std::function<absl::StatusOr<std::unique_ptr<Provider>>(const PoolConfig&)> make_provider;
    // Finds or builds an image by name ("tiny", "debian"); may take a while the first time.
    std::function<absl::StatusOr<BootImage>(const std::string&)> image;
    // The boot files (kernel, initrd) of a kernel build for a direct-boot guest of `image`: the
    // build's kernel, and the image's initramfs with the build's modules added.
    std::function<absl::StatusOr<BootImage>(const kfleet::v1::KernelBuild&, const std::string&)>
        kernel_boot_files;
    // The enrolment a new guest's agent uses: a token bound to the guest's name and host id and
    // to `labels` (the pool's), and the CA certificate (PEM) to trust. The guest gets them through
    // fw_cfg (kTokenFwCfgName, kCaCertFwCfgName); an error fails the guest's creation. Unset:
    // guests get none (a plaintext controller). Called on the reconcile thread.
    std::function<absl::StatusOr<GuestEnrolment>(const kfleet::v1::Guest& guest,
                                                 const std::map<std::string, std::string>& labels)>
        enrol;
    // Called after a guest was destroyed, so that its token and certificates stop working; also
    // when its creation failed after `enrol` gave it a token. May be called more than once for a
    // guest. May be unset. Called on the reconcile thread or the caller of Destroy.
    std::function<void(const kfleet::v1::Guest& guest)> forget;
  };
  PoolManager(std::vector<PoolConfig> pools, Deps deps);

  // The controller's port, known once its server listens; before any Tick.
  void set_controller_port(int port) { controller_port_ = port; }

  absl::StatusOr<std::vector<kfleet::v1::Pool>> ListPools();
  // Records `count` new guests of `pool` (state "creating"); Tick creates them.
  absl::StatusOr<std::vector<kfleet::v1::Guest>> Bringup(const std::string& pool, int count);
  // Destroys a guest (by name) or every guest of a pool; marks the guests' open commands lost.
  absl::StatusOr<std::vector<std::string>> Destroy(const std::string& name_or_pool);

  // One round: create requested guests, fail those that never registered, autoscale, handle
  // overdue reboots and long-offline guests, copy consoles. Called about once a second.
  void Tick(absl::Time now);

 private:
  struct Runtime {
    absl::Time last_busy;  // last time its host had a command
    absl::Time last_power_cycle = absl::InfinitePast();
    uint64_t console_offset = 0;  // bytes of the console file already copied
  };
  absl::StatusOr<Provider*> ProviderFor(const PoolConfig& pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const PoolConfig* FindPool(const std::string& name) const;
  // The boot files of the job's build `identity` for a guest of `pool`.
  absl::StatusOr<BootImage> KernelFiles(const std::string& identity,
                                        const kfleet::v1::CommandInfo& c, const PoolConfig& pool);
  // A kernel_install through the provider: prepares the boot files, and the command passes.
  void InstallKernel(absl::Time now, const kfleet::v1::CommandInfo& c,
                     const kfleet::v1::Guest* guest, const PoolConfig* pool, absl::Status usable)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CreateGuest(kfleet::v1::Guest guest) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DestroyGuest(const kfleet::v1::Guest& guest, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<kfleet::v1::Guest> NewGuests(const PoolConfig& pool, int count,
                                           const std::vector<kfleet::v1::Guest>& existing);
  void Autoscale(absl::Time now, const std::vector<kfleet::v1::Guest>& guests)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleOverdueReboots(absl::Time now, const std::vector<kfleet::v1::Guest>& guests)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reboots with a one-time command line: boot the guest into it through the provider.
  void RunControllerCommands(absl::Time now, const std::vector<kfleet::v1::Guest>& guests)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CopyConsoles(const std::vector<kfleet::v1::Guest>& guests)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Event(const std::string& host_id, const std::string& kind, const std::string& message,
             const std::string& command_id = "");
  void Act(ApplyOutcome& outcome);

  const std::vector<PoolConfig> pools_;
  Deps deps_;
  std::atomic<int> controller_port_{0};
  // Serialises Tick, Bringup and Destroy: provider calls for one guest never overlap.
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Provider>> providers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Runtime> runtime_ ABSL_GUARDED_BY(mu_);  // by guest name
};

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_POOL_MANAGER_H_

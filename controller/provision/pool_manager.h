// Runs the pools: brings guests up and down (by hand and with the queue), power-cycles guests
// that do not come back from a reboot or stay offline, and copies each guest's serial console into
// the console log of the command running on it. Tick() does the slow work (provider calls, image
// builds) and runs on the controller's reconcile thread, never on a gRPC thread.
//
// What fails after the caller of Bringup got its answer reaches people three ways: the guest's
// detail, the pool's last error (ListPools, cleared when a guest of the pool registers), and
// `guest_failed` events. A pool whose bring-up fails backs off: 1 s doubling to 5 min between
// attempts, each up to a quarter shorter at random, reset when a guest of it registers. Events
// are stored when an error first happens, when it changes, and when the same error has failed
// 2, 4, 8, ... attempts in a row, each saying how often and since when.
#ifndef KFLEET_CONTROLLER_PROVISION_POOL_MANAGER_H_
#define KFLEET_CONTROLLER_PROVISION_POOL_MANAGER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <random>
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

  // The pools, their guests and their trouble. Never waits for Tick's slow work.
  absl::StatusOr<std::vector<kfleet::v1::Pool>> ListPools();
  // Records `count` new guests of `pool` (state "creating"); Tick creates them. A pool that is
  // backing off makes its next attempt at the next Tick: someone asked.
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
    // After a failed destroy (idle timeout) or power-cycle (offline): not again before.
    absl::Time provider_retry_at = absl::InfinitePast();
  };
  // What went wrong in a pool since a guest of it last registered.
  struct Trouble {
    std::string error;  // the last error of any operation, and about which guest
    std::string guest;
    absl::Time error_time;
    absl::Time next_attempt = absl::InfinitePast();  // of a bring-up
    // Per operation ("bringup", "destroy", "power_cycle"): failures in a row, the last error's
    // text, how many of them failed with it and since when.
    struct Op {
      int failures = 0;
      std::string text;
      int same = 0;
      absl::Time since;
    };
    std::map<std::string, Op> ops;
  };
  // Records a failed operation `op` of `pool` about `guest` (may be null): the pool's last error,
  // a guest_failed event when the policy above says so, and, for op "bringup", the next step of
  // the backoff. Returns the delay before the operation should be tried again.
  absl::Duration Failed(absl::Time now, const std::string& pool, const kfleet::v1::Guest* guest,
                        const std::string& op, const std::string& error)
      ABSL_LOCKS_EXCLUDED(trouble_mu_);
  // A guest of `pool` registered: its trouble is over and the backoff starts again at 1 s.
  void CameUp(const std::string& pool) ABSL_LOCKS_EXCLUDED(trouble_mu_);
  // `op` (destroy, power_cycle) worked: its next failure is retried after 1 s again.
  void Succeeded(const std::string& pool, const std::string& op) ABSL_LOCKS_EXCLUDED(trouble_mu_);
  bool BackingOff(const std::string& pool, absl::Time now) ABSL_LOCKS_EXCLUDED(trouble_mu_);
  // The delay after the n-th failure in a row (n >= 1) of an operation.
  absl::Duration NextDelay(int failures) ABSL_EXCLUSIVE_LOCKS_REQUIRED(trouble_mu_);
  absl::StatusOr<Provider*> ProviderFor(const PoolConfig& pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const PoolConfig* FindPool(const std::string& name) const;
  // The boot files of the job's build `identity` for a guest of `pool`.
  absl::StatusOr<BootImage> KernelFiles(const std::string& identity,
                                        const kfleet::v1::CommandInfo& c, const PoolConfig& pool);
  // A kernel_install through the provider: prepares the boot files, and the command passes.
  void InstallKernel(absl::Time now, const kfleet::v1::CommandInfo& c,
                     const kfleet::v1::Guest* guest, const PoolConfig* pool, absl::Status usable)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A guest still "creating" when an attempt fails before anything was made for it (its
  // provider or image), to be tried again; "failed" otherwise. The error names what failed.
  absl::Status CreateGuest(absl::Time now, kfleet::v1::Guest guest)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
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
  // Apart from mu_, which Tick holds through image builds: ListPools and Bringup must not wait.
  // Taken after mu_, never before.
  absl::Mutex trouble_mu_;
  std::map<std::string, Trouble> trouble_ ABSL_GUARDED_BY(trouble_mu_);  // by pool name
  std::minstd_rand jitter_ ABSL_GUARDED_BY(trouble_mu_){std::random_device{}()};
};

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_POOL_MANAGER_H_

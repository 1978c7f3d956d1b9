// Pools as the controller's config file declares them (YAML), and the default pool used when there
// is no config file (DESIGN.md, "Provisioning").
//
//   pools:
//     local:
//       provider: libvirt          # or exec
//       uri: qemu:///system        # libvirt
//       image: tiny                # or debian
//       cpus: 1
//       memory: 512M
//       disks: [{name: test, size: 4G}, {name: scratch, size: 4G}]
//       min: 0
//       max: 2
//       idle_timeout: 10m
//       labels: {role: guest}
//       exec: {create: CMD, destroy: CMD, power_cycle: CMD}   # exec provider only
#ifndef KFLEET_CONTROLLER_PROVISION_POOL_CONFIG_H_
#define KFLEET_CONTROLLER_PROVISION_POOL_CONFIG_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/provision/provider.h"

namespace kfleet::controller::provision {

struct PoolConfig {
  std::string name;
  std::string provider = "libvirt";
  std::string uri = "qemu:///system";
  // libvirt: guest NAME is the domain DOMAIN_PREFIX + NAME (for controllers sharing a libvirtd).
  std::string domain_prefix;
  std::string image = "tiny";
  int cpus = 1;
  uint64_t memory_mib = 512;
  std::vector<DiskSpec> disks;
  uint32_t min = 0;
  uint32_t max = 2;
  absl::Duration idle_timeout = absl::Minutes(10);
  // Labels the guests get; `pool: <name>` is always added.
  std::map<std::string, std::string> labels;
  // exec provider: shell commands, each given the guest as JSON on stdin.
  std::string exec_create;
  std::string exec_destroy;
  std::string exec_power_cycle;
  // A guest that does not register within this long after creation is destroyed as failed.
  absl::Duration boot_timeout = absl::Minutes(5);
};

// The pool used with no config file: `local`, libvirt qemu:///system, tiny image, 1 vCPU,
// 512 MiB, min 0, max 2, idle timeout 10 minutes.
std::vector<PoolConfig> DefaultPools();

// Parses a config file's text. Without a `pools` key (an empty file, or one of comments and
// flags only) the pools are DefaultPools(); `pools: {}` declares none. The same file holds
// kfleet-controller's flags as top-level keys, which the daemon's flag loader reads and checks
// (common/daemon_config.h): keys in `flag_keys` are skipped here, any other top-level key is an
// error. Errors name the file, the line and the field, and what was expected. `file_name` is only
// used in messages.
absl::StatusOr<std::vector<PoolConfig>> ParsePoolConfig(
    const std::string& text, const std::string& file_name,
    const std::set<std::string>& flag_keys = {});

// "512M", "4G", "1024" (MiB) -> MiB.
absl::StatusOr<uint64_t> ParseSizeMib(const std::string& text);

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_POOL_CONFIG_H_

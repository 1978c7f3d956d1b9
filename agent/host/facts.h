// What an agent tells the controller about its host: facts, boot id, and its own stable host id.
#ifndef KFLEET_AGENT_HOST_FACTS_H_
#define KFLEET_AGENT_HOST_FACTS_H_

#include <string>

#include "absl/status/statusor.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

// Reads uname, /etc/os-release, /proc/version, CPU count and memory. Never fails: a fact that
// cannot be read is left empty.
kfleet::v1::HostFacts CollectFacts();

// HostFacts.boot_loader from the kernel command line and whether grub (grub.cfg and grub-reboot)
// is installed: "direct" (kfleet.boot=direct), "grub", or "".
std::string DetectBootLoader(const std::string& cmdline, bool has_grub);

// /proc/sys/kernel/random/boot_id, or "" if unreadable.
std::string BootId();

// The host id kept in `state_dir`/host_id, created on first use. Stable across restarts and
// reboots; removing the file makes the agent a new host.
absl::StatusOr<std::string> LoadOrCreateHostId(const std::string& state_dir);

// `kfleet.controller=HOST:PORT` (or any `kfleet.KEY=`) from a kernel command line, "" if absent.
std::string KernelCmdlineValue(const std::string& cmdline, const std::string& key);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_HOST_FACTS_H_

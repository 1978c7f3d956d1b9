// A memory cgroup for every command the agent runs (DESIGN.md, "Metrics and events"), so that its
// peak memory and its own OOM kills are known and it can be given a memory limit.
//
// Layout. The agent's own cgroup is BASE; the commands live in BASE/kfleet/<command id>.
//  - cgroup v2 with the agent in the root cgroup (a guest's init): BASE is the root; +memory is
//    enabled in the root's and in kfleet's cgroup.subtree_control. If nothing is mounted at
//    /sys/fs/cgroup and the kernel has cgroup2, Detect mounts it there first.
//  - cgroup v2 with the agent in a service's cgroup (systemd, Delegate=yes): cgroup v2 lets only a
//    cgroup without processes pass controllers on, so the agent moves itself into BASE/agent
//    first. A BASE that holds other processes than the agent is not used.
//  - cgroup v1 (the memory controller's own hierarchy): BASE is the agent's memory cgroup.
//  - none: neither is usable; commands then have wait4's max RSS only.
//
// Choices. memory.oom.group stays 0 on v2: an OOM kill takes one process, not the whole command,
// because kernel tests (LTP's oom*) provoke OOM kills in children on purpose and must survive
// them. A limit covers memory and swap together: memory.swap.max=0 on v2, memsw = limit on v1
// (swappiness 0 without swap accounting), so a limited command cannot escape into swap.
#ifndef KFLEET_AGENT_EXEC_CGROUP_H_
#define KFLEET_AGENT_EXEC_CGROUP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet::agent {

enum class CgroupMode { kNone, kV1, kV2 };

// "v2", "v1" or "" (none), as in CommandResult.cgroup.
std::string CgroupModeName(CgroupMode mode);

// mount -t cgroup2 cgroup2 `target`. PermissionDenied unless we run as root.
absl::Status MountCgroup2(const std::string& target);

struct CgroupOptions {
  // Where /proc and /sys are found: "/" on a host, a fake tree in tests.
  std::string root = "/";
  // The directory under the agent's cgroup that holds the commands' cgroups.
  std::string parent_name = "kfleet";
  // Mounts cgroup2 at `target` (under `root`) when nothing is mounted at /sys/fs/cgroup. Empty:
  // never mount.
  std::function<absl::Status(const std::string& target)> mount_cgroup2 = MountCgroup2;
};

struct CgroupCounters {
  int64_t peak_bytes = 0;   // highest memory use since the cgroup was made; 0 if unknown
  uint32_t oom_kills = 0;   // processes in the cgroup the OOM killer killed, since it was made
  int64_t limit_bytes = 0;  // the limit it was made with; 0: none
};

// One command's cgroup. Removed on destruction. Everything but Remove() and the destructor may be
// called from any thread.
class CommandCgroup {
 public:
  ~CommandCgroup();  // Remove(), logging a failure
  CommandCgroup(const CommandCgroup&) = delete;
  CommandCgroup& operator=(const CommandCgroup&) = delete;

  CgroupMode mode() const { return mode_; }
  const std::string& command_id() const { return command_id_; }
  // Its path in the hierarchy, as /proc/PID/cgroup and the kernel's OOM report print it.
  const std::string& path() const { return path_; }
  // Its directory in our filesystem.
  const std::string& dir() const { return dir_; }
  int64_t limit_bytes() const { return limit_bytes_; }

  // Opens its cgroup.procs write-only and close-on-exec, for a child to join before exec: a child
  // that writes "0" to it moves itself in (v1 and v2 alike). The caller owns the descriptor.
  absl::StatusOr<int> OpenProcs() const;

  // Peak memory and OOM kills so far. Read them before Remove(); errors name the file.
  absl::StatusOr<CgroupCounters> ReadCounters() const;

  // Kills whatever is still in it (processes that left the command's process group) and removes
  // it, retrying for up to 2 s while they die. Idempotent. Not concurrent with other calls.
  absl::Status Remove();

 private:
  friend class CgroupManager;
  CommandCgroup(CgroupMode mode, std::string command_id, std::string path, std::string dir,
                int64_t limit_bytes);

  const CgroupMode mode_;
  const std::string command_id_;
  const std::string path_;
  const std::string dir_;
  const int64_t limit_bytes_;
  bool removed_ = false;
};

// The agent's cgroup setup, one per agent, made once at start by Detect. Immutable afterwards:
// thread-safe.
class CgroupManager {
 public:
  // Finds the best usable mode (v2, else v1, else none), prepares BASE (see the top of this file)
  // and removes the empty command cgroups a previous run left behind; cgroups with processes still
  // in them are logged and left. Never fails: what did not work is in detail() and the log.
  // On v2 in a service's cgroup this moves the calling process into BASE/agent.
  static std::unique_ptr<CgroupManager> Detect(const CgroupOptions& options);

  CgroupMode mode() const { return mode_; }
  // The directory that holds the commands' cgroups ("" in none mode).
  const std::string& parent_dir() const { return parent_dir_; }
  // One line for the log: the mode and where, or why no cgroup can be used.
  const std::string& detail() const { return detail_; }

  // A fresh cgroup for command `command_id` (a valid id, see common/ids.h), limited to
  // `memory_max_bytes` of memory and swap together if that is positive. Errors: FailedPrecondition
  // in none mode, InvalidArgument for a bad id or a negative limit, AlreadyExists, and the
  // failing file operation's status.
  absl::StatusOr<std::unique_ptr<CommandCgroup>> Create(const std::string& command_id,
                                                        int64_t memory_max_bytes) const;

  // The command whose cgroup holds cgroup `path` ("/process_api/x/kfleet/c-12/sub" -> "c-12"),
  // as the kernel prints it in an OOM report's task_memcg= and oom_memcg=. Works after the cgroup
  // was removed. Assumes the agent runs in the init cgroup namespace, where paths in
  // /proc/self/cgroup and the kernel's reports agree.
  std::optional<std::string> CommandIdForCgroupPath(absl::string_view path) const;

 private:
  CgroupManager(CgroupMode mode, std::string parent_path, std::string parent_dir,
                std::string detail);

  const CgroupMode mode_;
  const std::string parent_path_;  // hierarchy path of BASE/kfleet
  const std::string parent_dir_;
  const std::string detail_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_EXEC_CGROUP_H_

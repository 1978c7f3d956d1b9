// File formats and file operations of the cgroup filesystems, for cgroup.cc. Internal to the
// runner; CgroupManager (cgroup.h) is the interface.
#ifndef KFLEET_AGENT_EXEC_CGROUP_FS_H_
#define KFLEET_AGENT_EXEC_CGROUP_FS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kfleet::agent {

// One line of /proc/PID/mountinfo.
struct MountEntry {
  std::string root;         // the directory of the filesystem that is mounted, "/" for all of it
  std::string mount_point;  // absolute, octal escapes (\040) undone
  std::string fs_type;      // "cgroup2", "cgroup", "tmpfs", ...
  std::vector<std::string> super_options;  // "rw", "memory", ...
};

// Parses mountinfo text; malformed lines are skipped.
std::vector<MountEntry> ParseMountInfo(absl::string_view text);

// Our cgroups, from /proc/self/cgroup: the cgroup v2 path (the "0::" line) and the path in the v1
// hierarchy that has the memory controller. Each empty if absent.
struct ProcCgroups {
  std::string v2;
  std::string v1_memory;
};
ProcCgroups ParseProcCgroup(absl::string_view text);

// The directory of cgroup `path` (as /proc/self/cgroup names it) under `mount`, or nullopt if the
// mount does not show it (the path is outside the mounted subtree).
std::optional<std::string> CgroupDir(const MountEntry& mount, absl::string_view path);

// `parent` + "/" + `name` for cgroup paths and directories, without doubling a "/".
std::string JoinPath(absl::string_view parent, absl::string_view name);

// The value of `key` in flat keyed files such as memory.events or memory.oom_control ("oom_kill
// 3"), or nullopt if the key is missing or its value is not a number.
std::optional<int64_t> KeyedValue(absl::string_view text, absl::string_view key);

// The first line of a control file as a number; "max" reads as -1.
absl::StatusOr<int64_t> ReadInt64File(const std::string& path);

// Writes `value` to a control file in one write(2), as `echo value >> path` would; the kernel acts
// on each write. A missing file is created, which only a fake tree allows.
absl::Status WriteControl(const std::string& path, absl::string_view value);

// True if `path` exists.
bool Exists(const std::string& path);

// The subdirectories of `dir` (child cgroups), as full paths; none if it cannot be read.
std::vector<std::string> SubDirs(const std::string& dir);

// The pids listed in a cgroup.procs file.
absl::StatusOr<std::vector<pid_t>> ReadPids(const std::string& path);

// Kills what is left in cgroup directory `dir` (cgroup.kill where the kernel has it, else SIGKILL
// to every pid in cgroup.procs) and removes it with the cgroups a command made inside it, retrying
// while the processes die, for at most `timeout`. OK if the directory is already gone.
absl::Status KillAndRemoveCgroup(const std::string& dir, absl::Duration timeout);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_EXEC_CGROUP_FS_H_

#include "agent/exec/cgroup.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/memory/memory.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "agent/exec/cgroup_fs.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

constexpr char kCgroupMount[] = "/sys/fs/cgroup";
constexpr char kAgentLeaf[] = "agent";  // BASE/agent: where the agent moves itself on v2
constexpr absl::Duration kRemoveTimeout = absl::Seconds(2);

absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  return ErrnoStatus(absl::StrCat("mkdir ", path), errno);
}

bool HasWord(absl::string_view text, absl::string_view word) {
  for (absl::string_view w : absl::StrSplit(text, absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    if (w == word) return true;
  }
  return false;
}

// Where the commands' cgroups go: the hierarchy path (as the kernel prints it) and our directory.
struct Parent {
  std::string path;
  std::string dir;
};

// Detect's steps, over the tree under options.root.
class Detector {
 public:
  explicit Detector(const CgroupOptions& options) : options_(options) {}

  // Our path for absolute path `abs` on the host.
  std::string Host(absl::string_view abs) const { return JoinPath(options_.root, abs); }

  absl::StatusOr<std::vector<MountEntry>> Mounts() const {
    ASSIGN_OR_RETURN(std::string text, ReadFile(Host("/proc/self/mountinfo")));
    return ParseMountInfo(text);
  }

  ProcCgroups OwnCgroups() const {
    absl::StatusOr<std::string> text = ReadFile(Host("/proc/self/cgroup"));
    return text.ok() ? ParseProcCgroup(*text) : ProcCgroups{};
  }

  bool KernelHasCgroup2() const {
    absl::StatusOr<std::string> text = ReadFile(Host("/proc/filesystems"));
    return text.ok() && HasWord(*text, "cgroup2");
  }

  // The tiny initramfs mounts nothing at /sys/fs/cgroup; an init that did would have chosen.
  absl::StatusOr<MountEntry> MountV2() const {
    if (!options_.mount_cgroup2) return absl::FailedPreconditionError("mounting is disabled");
    if (!KernelHasCgroup2()) {
      return absl::FailedPreconditionError("the kernel has no cgroup2 (/proc/filesystems)");
    }
    RETURN_IF_ERROR(options_.mount_cgroup2(Host(kCgroupMount)));
    return MountEntry{"/", kCgroupMount, "cgroup2", {}};
  }

  absl::StatusOr<Parent> SetUpV2(const MountEntry& mount, std::string own) const {
    if (own.empty()) return absl::FailedPreconditionError("/proc/self/cgroup has no 0:: line");
    // An earlier Detect in this process already moved us into BASE/agent.
    std::string base = own;
    if (own != "/" && own.substr(own.rfind('/') + 1) == kAgentLeaf) {
      base = own.substr(0, own.rfind('/'));
      if (base.empty()) base = "/";
    }
    std::optional<std::string> rel = CgroupDir(mount, base);
    if (!rel) {
      return absl::FailedPreconditionError(absl::StrCat(
          "our cgroup ", base, " is outside the cgroup2 mount at ", mount.mount_point));
    }
    std::string base_dir = Host(*rel);
    ASSIGN_OR_RETURN(std::string controllers, ReadFile(JoinPath(base_dir, "cgroup.controllers")));
    if (!HasWord(controllers, "memory")) {
      return absl::FailedPreconditionError(
          absl::StrCat("the memory controller is not available in ", base_dir,
                       " (cgroup.controllers: \"", absl::StripSuffix(controllers, "\n"), "\")"));
    }
    if (base == own && own != "/") {
      // Only a cgroup without processes may pass controllers on (the root is exempt). Writing
      // our pid moves all our threads; other processes in BASE are not ours to move.
      std::string leaf = JoinPath(base_dir, kAgentLeaf);
      RETURN_IF_ERROR(MakeDir(leaf));
      RETURN_IF_ERROR(WriteControl(JoinPath(leaf, "cgroup.procs"), absl::StrCat(::getpid())));
    }
    if (absl::Status s = WriteControl(JoinPath(base_dir, "cgroup.subtree_control"), "+memory");
        !s.ok()) {
      absl::StatusOr<std::vector<pid_t>> pids = ReadPids(JoinPath(base_dir, "cgroup.procs"));
      if (base != "/" && pids.ok() && !pids->empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat(s.message(), ": ", base, " holds processes other than the agent (pids ",
                         absl::StrJoin(*pids, " "),
                         "); run the agent as its service's main process with "
                         "Delegate=yes"));
      }
      return s;
    }
    std::string parent_dir = JoinPath(base_dir, options_.parent_name);
    RETURN_IF_ERROR(MakeDir(parent_dir));
    RETURN_IF_ERROR(WriteControl(JoinPath(parent_dir, "cgroup.subtree_control"), "+memory"));
    return Parent{JoinPath(base, options_.parent_name), parent_dir};
  }

  absl::StatusOr<Parent> SetUpV1(const MountEntry& mount, const std::string& own) const {
    if (own.empty()) {
      return absl::FailedPreconditionError("/proc/self/cgroup names no memory cgroup");
    }
    std::optional<std::string> rel = CgroupDir(mount, own);
    if (!rel) {
      return absl::FailedPreconditionError(
          absl::StrCat("our memory cgroup ", own, " is outside the mount at ", mount.mount_point));
    }
    std::string base_dir = Host(*rel);
    if (!Exists(JoinPath(base_dir, "memory.limit_in_bytes"))) {
      return absl::FailedPreconditionError(absl::StrCat(base_dir, " has no memory.limit_in_bytes"));
    }
    std::string parent_dir = JoinPath(base_dir, options_.parent_name);
    RETURN_IF_ERROR(MakeDir(parent_dir));
    return Parent{JoinPath(own, options_.parent_name), parent_dir};
  }

 private:
  const CgroupOptions& options_;
};

// A crashed agent's commands leave their cgroups behind. Their processes are the recovery's to
// kill (CommandManager::RecoverInterrupted), so only empty ones go here.
void RemoveLeftovers(const std::string& parent_dir) {
  for (const std::string& dir : SubDirs(parent_dir)) {
    if (::rmdir(dir.c_str()) == 0) {
      LogInfo(absl::StrCat("removed the leftover cgroup ", dir));
    } else {
      LogWarning(absl::StrCat("cannot remove the leftover cgroup ", dir, ": ", ::strerror(errno),
                              "; left in place"));
    }
  }
}

}  // namespace

std::string CgroupModeName(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kV2:
      return "v2";
    case CgroupMode::kV1:
      return "v1";
    case CgroupMode::kNone:
      break;
  }
  return "";
}

absl::Status MountCgroup2(const std::string& target) {
  if (::geteuid() != 0) {
    return absl::PermissionDeniedError(absl::StrCat("mounting cgroup2 at ", target, " needs root"));
  }
  if (::mount("cgroup2", target.c_str(), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) !=
      0) {
    return ErrnoStatus(absl::StrCat("mount cgroup2 at ", target), errno);
  }
  return absl::OkStatus();
}

std::unique_ptr<CgroupManager> CgroupManager::Detect(const CgroupOptions& options) {
  Detector detector(options);
  auto make = [](CgroupMode mode, Parent parent, std::string detail) {
    return absl::WrapUnique(
        new CgroupManager(mode, std::move(parent.path), std::move(parent.dir), std::move(detail)));
  };
  absl::StatusOr<std::vector<MountEntry>> mounts = detector.Mounts();
  if (!mounts.ok()) {
    std::string detail = absl::StrCat("no memory cgroups: ", mounts.status().message());
    LogWarning(detail);
    return make(CgroupMode::kNone, {}, std::move(detail));
  }
  std::optional<MountEntry> v2, v1;
  bool cgroup_dir_mounted = false;
  for (const MountEntry& m : *mounts) {
    if (m.fs_type == "cgroup2") v2 = m;
    if (m.fs_type == "cgroup" && absl::c_linear_search(m.super_options, "memory")) v1 = m;
    if (m.mount_point == kCgroupMount) cgroup_dir_mounted = true;
  }

  std::vector<std::string> why;
  if (!v2 && !v1 && !cgroup_dir_mounted) {
    absl::StatusOr<MountEntry> mounted = detector.MountV2();
    if (mounted.ok()) {
      v2 = *mounted;
    } else {
      why.push_back(absl::StrCat("cannot mount cgroup2: ", mounted.status().message()));
    }
  }
  // Read after a mount: the 0:: line appears once cgroup2 has been mounted.
  ProcCgroups own = detector.OwnCgroups();
  std::unique_ptr<CgroupManager> manager;
  if (v2) {
    absl::StatusOr<Parent> p = detector.SetUpV2(*v2, own.v2.empty() ? "/" : own.v2);
    if (p.ok()) {
      manager = make(CgroupMode::kV2, *p, absl::StrCat("memory cgroups: v2 in ", p->dir));
    } else {
      why.push_back(absl::StrCat("cgroup v2: ", p.status().message()));
    }
  }
  if (manager == nullptr && v1) {
    absl::StatusOr<Parent> p = detector.SetUpV1(*v1, own.v1_memory);
    if (p.ok()) {
      manager = make(CgroupMode::kV1, *p, absl::StrCat("memory cgroups: v1 in ", p->dir));
    } else {
      why.push_back(absl::StrCat("cgroup v1: ", p.status().message()));
    }
  }
  if (manager == nullptr) {
    if (!v2 && !v1) why.push_back("neither cgroup2 nor the v1 memory controller is mounted");
    std::string detail = absl::StrCat("no memory cgroups: ", absl::StrJoin(why, "; "));
    LogWarning(detail);
    return make(CgroupMode::kNone, {}, std::move(detail));
  }
  LogInfo(why.empty() ? manager->detail()
                      : absl::StrCat(manager->detail(), " (", absl::StrJoin(why, "; "), ")"));
  RemoveLeftovers(manager->parent_dir());
  return manager;
}

CgroupManager::CgroupManager(CgroupMode mode, std::string parent_path, std::string parent_dir,
                             std::string detail)
    : mode_(mode),
      parent_path_(std::move(parent_path)),
      parent_dir_(std::move(parent_dir)),
      detail_(std::move(detail)) {}

absl::StatusOr<std::unique_ptr<CommandCgroup>> CgroupManager::Create(
    const std::string& command_id, int64_t memory_max_bytes) const {
  if (mode_ == CgroupMode::kNone) return absl::FailedPreconditionError(detail_);
  if (!IsValidId(command_id) || command_id == "." || command_id == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("command id \"", command_id, "\" cannot name a cgroup"));
  }
  if (memory_max_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory limit ", memory_max_bytes, " is negative"));
  }
  std::string dir = JoinPath(parent_dir_, command_id);
  if (::mkdir(dir.c_str(), 0755) != 0) return ErrnoStatus(absl::StrCat("mkdir ", dir), errno);
  auto cgroup = absl::WrapUnique(new CommandCgroup(
      mode_, command_id, JoinPath(parent_path_, command_id), dir, memory_max_bytes));
  if (memory_max_bytes == 0) return cgroup;

  std::string limit = absl::StrCat(memory_max_bytes);
  absl::Status s;
  if (mode_ == CgroupMode::kV2) {
    s = WriteControl(JoinPath(dir, "memory.max"), limit);
    if (s.ok() && Exists(JoinPath(dir, "memory.swap.max"))) {
      s = WriteControl(JoinPath(dir, "memory.swap.max"), "0");
    }
  } else {
    // memsw may not be below the memory limit, so the memory limit goes first.
    s = WriteControl(JoinPath(dir, "memory.limit_in_bytes"), limit);
    if (s.ok() && Exists(JoinPath(dir, "memory.memsw.limit_in_bytes"))) {
      s = WriteControl(JoinPath(dir, "memory.memsw.limit_in_bytes"), limit);
    } else if (s.ok()) {
      s = WriteControl(JoinPath(dir, "memory.swappiness"), "0");
    }
  }
  if (!s.ok()) return s;  // the destructor removes the cgroup
  return cgroup;
}

std::optional<std::string> CgroupManager::CommandIdForCgroupPath(absl::string_view path) const {
  if (mode_ == CgroupMode::kNone) return std::nullopt;
  if (!absl::ConsumePrefix(&path, parent_path_) || !absl::ConsumePrefix(&path, "/")) {
    return std::nullopt;
  }
  std::string id(path.substr(0, path.find('/')));
  if (!IsValidId(id) || id == "." || id == "..") return std::nullopt;
  return id;
}

CommandCgroup::CommandCgroup(CgroupMode mode, std::string command_id, std::string path,
                             std::string dir, int64_t limit_bytes)
    : mode_(mode),
      command_id_(std::move(command_id)),
      path_(std::move(path)),
      dir_(std::move(dir)),
      limit_bytes_(limit_bytes) {}

CommandCgroup::~CommandCgroup() {
  if (absl::Status s = Remove(); !s.ok()) {
    LogWarning(absl::StrCat("command ", command_id_, ": cannot remove its cgroup: ", s.message()));
  }
}

absl::StatusOr<int> CommandCgroup::OpenProcs() const {
  std::string path = JoinPath(dir_, "cgroup.procs");
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
  return fd;
}

absl::StatusOr<CgroupCounters> CommandCgroup::ReadCounters() const {
  CgroupCounters c;
  c.limit_bytes = limit_bytes_;
  std::string peak_file, events_file;
  if (mode_ == CgroupMode::kV2) {
    peak_file = JoinPath(dir_, "memory.peak");  // since Linux 5.19
    events_file = JoinPath(dir_, "memory.events");
  } else {
    peak_file = JoinPath(dir_, "memory.max_usage_in_bytes");
    events_file = JoinPath(dir_, "memory.oom_control");  // oom_kill since Linux 4.13
  }
  if (mode_ == CgroupMode::kV1 || Exists(peak_file)) {
    ASSIGN_OR_RETURN(c.peak_bytes, ReadInt64File(peak_file));
  }
  ASSIGN_OR_RETURN(std::string events, ReadFile(events_file, 1 << 16));
  c.oom_kills = static_cast<uint32_t>(KeyedValue(events, "oom_kill").value_or(0));
  return c;
}

absl::Status CommandCgroup::Remove() {
  if (removed_) return absl::OkStatus();
  RETURN_IF_ERROR(KillAndRemoveCgroup(dir_, kRemoveTimeout));
  removed_ = true;
  return absl::OkStatus();
}

}  // namespace kfleet::agent

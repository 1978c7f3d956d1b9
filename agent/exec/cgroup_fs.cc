#include "agent/exec/cgroup_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

// Control files are small; this bounds what a broken fake tree can make us read.
constexpr size_t kMaxControlBytes = 1 << 20;
constexpr absl::Duration kRemoveRetry = absl::Milliseconds(20);

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      absl::string_view digits = s.substr(i + 1, 3);
      if (digits[0] >= '0' && digits[0] <= '3' && digits[1] >= '0' && digits[1] <= '7' &&
          digits[2] >= '0' && digits[2] <= '7') {
        out.push_back(
            static_cast<char>((digits[0] - '0') * 64 + (digits[1] - '0') * 8 + (digits[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::vector<MountEntry> ParseMountInfo(absl::string_view text) {
  std::vector<MountEntry> mounts;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    // "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS"
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash + 3 >= fields.size()) continue;
    MountEntry entry;
    entry.root = Unescape(fields[3]);
    entry.mount_point = Unescape(fields[4]);
    entry.fs_type = std::string(fields[dash + 1]);
    entry.super_options = absl::StrSplit(fields[dash + 3], ',', absl::SkipEmpty());
    mounts.push_back(std::move(entry));
  }
  return mounts;
}

ProcCgroups ParseProcCgroup(absl::string_view text) {
  ProcCgroups out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    // "ID:CONTROLLERS:PATH"; PATH may itself hold ':'.
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (parts[0] == "0" && parts[1].empty()) {
      out.v2 = std::string(parts[2]);
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
      if (controller == "memory") out.v1_memory = std::string(parts[2]);
    }
  }
  return out;
}

std::optional<std::string> CgroupDir(const MountEntry& mount, absl::string_view path) {
  absl::string_view root = mount.root;
  if (root != "/") {
    if (!absl::StartsWith(path, root)) return std::nullopt;
    absl::string_view rest = path.substr(root.size());
    if (!rest.empty() && rest[0] != '/') return std::nullopt;  // "/a" is not under "/ab"
    path = rest;
  }
  return JoinPath(mount.mount_point, absl::StripPrefix(path, "/"));
}

std::string JoinPath(absl::string_view parent, absl::string_view name) {
  while (absl::ConsumeSuffix(&parent, "/")) {
  }
  while (absl::ConsumePrefix(&name, "/")) {
  }
  if (name.empty()) return parent.empty() ? "/" : std::string(parent);
  return absl::StrCat(parent, "/", name);
}

std::optional<int64_t> KeyedValue(absl::string_view text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    int64_t value = 0;
    if (kv.first == key && absl::SimpleAtoi(kv.second, &value)) return value;
  }
  return std::nullopt;
}

absl::StatusOr<int64_t> ReadInt64File(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, kMaxControlBytes);
  if (!text.ok()) return text.status();
  absl::string_view first = absl::StripAsciiWhitespace(*text);
  first = first.substr(0, first.find('\n'));
  if (first == "max") return -1;
  int64_t value = 0;
  if (!absl::SimpleAtoi(first, &value)) {
    return absl::InternalError(absl::StrCat(path, ": expected a number, got \"", first, "\""));
  }
  return value;
}

absl::Status WriteControl(const std::string& path, absl::string_view value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
  std::string line = absl::StrCat(value, "\n");
  ssize_t n;
  do {
    n = ::write(fd, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (n < 0) return ErrnoStatus(absl::StrCat("write \"", value, "\" to ", path), err);
  if (static_cast<size_t>(n) != line.size()) {
    return absl::InternalError(absl::StrCat("short write to ", path));
  }
  return absl::OkStatus();
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::vector<std::string> SubDirs(const std::string& dir) {
  std::vector<std::string> dirs;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return dirs;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = JoinPath(dir, name);
    struct stat st;
    if (e->d_type == DT_DIR ||
        (e->d_type == DT_UNKNOWN && ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))) {
      dirs.push_back(std::move(path));
    }
  }
  ::closedir(d);
  return dirs;
}

absl::StatusOr<std::vector<pid_t>> ReadPids(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, kMaxControlBytes);
  if (!text.ok()) return text.status();
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    int pid = 0;
    if (absl::SimpleAtoi(line, &pid) && pid > 0) pids.push_back(pid);
  }
  return pids;
}

absl::Status KillAndRemoveCgroup(const std::string& dir, absl::Duration timeout) {
  const std::string kill_file = JoinPath(dir, "cgroup.kill");
  const bool has_kill = Exists(kill_file);
  absl::Time deadline = absl::Now() + timeout;
  // A cgroup with child cgroups cannot be removed (EBUSY): children first.
  for (const std::string& child : SubDirs(dir)) {
    RETURN_IF_ERROR(KillAndRemoveCgroup(child, deadline - absl::Now()));
  }
  while (true) {
    if (::rmdir(dir.c_str()) == 0) return absl::OkStatus();
    int err = errno;
    if (err == ENOENT) return absl::OkStatus();
    if (err != EBUSY || absl::Now() >= deadline) {
      return ErrnoStatus(absl::StrCat("rmdir ", dir), err);
    }
    // Still populated: a process that left the command's process group (setsid). Killing it is
    // safe by pid because cgroup.procs lists only live members of this cgroup.
    if (has_kill) {
      WriteControl(kill_file, "1").IgnoreError();
    } else if (absl::StatusOr<std::vector<pid_t>> pids = ReadPids(JoinPath(dir, "cgroup.procs"));
               pids.ok()) {
      for (pid_t pid : *pids) ::kill(pid, SIGKILL);
    }
    absl::SleepFor(kRemoveRetry);
  }
}

}  // namespace kfleet::agent

#include "controller/provision/host_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"

extern char** environ;

namespace kfleet::controller::provision {
namespace {

constexpr size_t kMaxOutput = 64 << 10;

// Keeps the descriptor and the posix_spawn objects tidy on every return path.
struct SpawnState {
  int read_fd = -1;
  int write_fd = -1;
  bool actions_ready = false;
  bool attr_ready = false;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;

  ~SpawnState() {
    if (read_fd >= 0) ::close(read_fd);
    if (write_fd >= 0) ::close(write_fd);
    if (actions_ready) posix_spawn_file_actions_destroy(&actions);
    if (attr_ready) posix_spawnattr_destroy(&attr);
  }
};

}  // namespace

absl::StatusOr<HostCommandResult> RunHostCommand(const std::vector<std::string>& argv,
                                                 absl::Duration timeout, absl::string_view until) {
  if (argv.empty()) return absl::InvalidArgumentError("RunHostCommand: empty argv");
  const std::string what = absl::StrJoin(argv, " ");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  SpawnState st;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  st.read_fd = fds[0];
  st.write_fd = fds[1];
  int rc = posix_spawn_file_actions_init(&st.actions);
  if (rc != 0) return ErrnoStatus("posix_spawn_file_actions_init", rc);
  st.actions_ready = true;
  posix_spawn_file_actions_addopen(&st.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&st.actions, st.write_fd, 1);
  posix_spawn_file_actions_adddup2(&st.actions, st.write_fd, 2);
  rc = posix_spawnattr_init(&st.attr);
  if (rc != 0) return ErrnoStatus("posix_spawnattr_init", rc);
  st.attr_ready = true;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&st.attr, &none);
  posix_spawnattr_setsigdefault(&st.attr, &all);
  posix_spawnattr_setpgroup(&st.attr, 0);
  posix_spawnattr_setflags(&st.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  rc = posix_spawnp(&pid, args[0], &st.actions, &st.attr, args.data(), environ);
  if (rc != 0) return ErrnoStatus(absl::StrCat("cannot run ", what), rc);
  ::close(st.write_fd);
  st.write_fd = -1;

  HostCommandResult result;
  const absl::Time deadline = absl::Now() + timeout;
  char buf[8192];
  while (true) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      result.stopped = true;
      break;
    }
    pollfd p{st.read_fd, POLLIN, 0};
    int ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
    int n = ::poll(&p, 1, ms);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    ssize_t got = ::read(st.read_fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // end of file: the command (and its group) closed the pipe
    result.output.append(buf, got);
    if (!until.empty() && absl::StrContains(result.output, until)) {
      result.stopped = true;
      break;
    }
    if (result.output.size() > 2 * kMaxOutput) {
      result.output.erase(0, result.output.size() - kMaxOutput);
    }
  }
  // A command that closed its output may still run: the deadline holds for it too.
  int status = 0;
  while (!result.stopped) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (absl::Now() >= deadline) {
      result.stopped = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (result.stopped) {
    ::kill(-pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (result.output.size() > kMaxOutput) {
    result.output.erase(0, result.output.size() - kMaxOutput);
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace kfleet::controller::provision

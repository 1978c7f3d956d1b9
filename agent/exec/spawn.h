// Starting a command's process: fork and exec in a new process group, stdin from /dev/null,
// stdout and stderr on pipes. Internal to the runner; Process (process.h) is the interface.
#ifndef KFLEET_AGENT_EXEC_SPAWN_H_
#define KFLEET_AGENT_EXEC_SPAWN_H_

#include <sys/types.h>

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/exec/process.h"

namespace kfleet::agent {

// Owns a file descriptor and closes it.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(ScopedFd&& other) : fd_(other.Release()) {}
  ScopedFd& operator=(ScopedFd&& other) {
    Reset(other.Release());
    return *this;
  }

  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// The parent's side of a started child.
struct SpawnedChild {
  pid_t pid = -1;         // leads its own process group; the caller must reap it
  absl::Time start_time;  // taken just before fork
  ScopedFd stdout_fd;     // read ends of the child's stdout and stderr: non-blocking, close-on-exec
  ScopedFd stderr_fd;
  std::string start_error;  // why exec failed (the child then exits 127); empty if it did not
};

// Forks and execs spec.argv (argv[0] looked up in the command's PATH) with spec.env added to our
// environment, in spec.dir, with every descriptor but 0-2 closed and signal dispositions and mask
// reset. The child joins spec.cgroup if set, and gets oom_score_adj 0 if ours is negative (an agent
// that protected itself from the OOM killer), both before exec. Returns once the child has exec'd
// or failed before exec, so that by then it leads its own process group. A failure of the child is
// not an error here: it is in start_error (a failure to join the cgroup too). Errors: the failed
// system call's status if pipes or fork fail or spec.cgroup's cgroup.procs cannot be opened.
// Precondition: spec.argv[0] is not empty. Thread-safe.
absl::StatusOr<SpawnedChild> SpawnChild(const RunSpec& spec);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_EXEC_SPAWN_H_

// Runs one command for the agent: its own process group, output streamed as it is produced, a
// timeout, cancel, and the resources it used. Cancel, timeout and the end of the command all end
// the whole process group, grandchildren included.
#ifndef KFLEET_AGENT_EXEC_PROCESS_H_
#define KFLEET_AGENT_EXEC_PROCESS_H_

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

class CommandCgroup;

struct RunSpec {
  std::vector<std::string> argv;           // argv[0] looked up in PATH; non-empty
  std::map<std::string, std::string> env;  // added to the inherited environment
  std::string dir;                         // working directory; empty = inherit
  absl::Duration timeout = absl::InfiniteDuration();
  absl::Duration kill_grace = absl::Seconds(10);  // between SIGTERM and SIGKILL
  // The command's memory cgroup (cgroup.h), or null for none. Borrowed: it must outlive the
  // Process. The child joins it before exec and Wait() reads its counters; its owner removes it
  // (by destroying it) after Wait() returned. Several Processes may use one in turn.
  CommandCgroup* cgroup = nullptr;
};

// Receives a command's output as it is produced, in chunks of at most 64 KiB, in order within
// each stream. Called from the runner's reader threads, one per stream, so the two streams may
// call concurrently. May block: the command then blocks writing to its pipe, which is how a
// full outbox slows it down.
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void Write(kfleet::v1::LogStream stream, absl::string_view data) = 0;
};

// One running command. Owns four threads: a reader per stream, a reaper blocked in waitid on the
// child, and a supervisor that enforces the timeout, cancel and kill grace.
//
// When the command's main process (the group leader) exits, whatever is left of its group is
// SIGKILLed before the leader is reaped, so that a backgrounded grandchild holding the output pipe
// cannot keep Wait() from returning. A process that left the group (setsid) is out of reach: once
// the group is dead the readers wait at most a few seconds more for end of file, then take what is
// buffered in the pipes and stop.
class Process {
 public:
  // fork+exec of spec.argv in a new process group, stdin from /dev/null, stdout and stderr to
  // `sink`. `sink` must outlive the Process. If the program cannot be run (not found, not
  // executable, bad directory), Start still succeeds and Wait() reports exit code 127, verdict
  // FAIL and a detail such as `cannot run "foo": No such file or directory`. Errors:
  // InvalidArgument for an empty argv, the failed system call's status if pipes or fork fail, and
  // the error reading spec.cgroup's files (NotFound once it was removed): a command does not run
  // outside the cgroup it was given.
  static absl::StatusOr<std::unique_ptr<Process>> Start(const RunSpec& spec, OutputSink* sink);

  // Kills the group and waits for it if still running; see Wait().
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // The leader's pid, which is also the process group id.
  pid_t pid() const { return pid_; }

  // SIGTERMs the group and SIGKILLs it kill_grace later if the leader has not exited by then.
  // The result then has cancelled=true, verdict CANCELLED and detail `reason`. Thread-safe and
  // idempotent: only the first call counts, and a call after the command ended or timed out has no
  // effect. Does not block.
  void Cancel(const std::string& reason);

  // Blocks until the command exited, its group is gone and both streams are drained, then reports
  // how it ended: PASS on exit 0; FAIL with exit_code or signal otherwise ("exited with status 3",
  // "killed by signal 9 (Killed)"); TIMEOUT with timed_out=true ("timed out after 5m"); CANCELLED.
  // wall_ms runs from Start to the leader's exit; CPU times and max_rss_bytes are wait4's, which
  // count the leader and the descendants it waited for.
  // With a cgroup: `cgroup`, `memory_max_bytes`, `memory_peak_bytes` (the cgroup's peak since it
  // was made) and `oom_kills` (OOM kills in the cgroup while this Process ran). If there were OOM
  // kills and the command failed (the victim was the leader, or the leader failed because a
  // child was killed), oom_killed is true, the verdict FAIL and the detail like "OOM-killed:
  // memory limit 64 MiB reached (peak 64.0 MiB, 1 OOM kill)" or, without a limit, "OOM-killed by
  // the kernel (peak ...)"; timeout and cancel take precedence. A command that survives the OOM
  // kill of a child and exits 0 passes, with oom_kills set. Call at most once.
  kfleet::v1::CommandResult Wait();

 private:
  Process(pid_t pid, const RunSpec& spec, OutputSink* sink, absl::Time start_time, int stdout_fd,
          int stderr_fd, int stop_fd, std::string start_error);

  void ReadLoop(int fd, kfleet::v1::LogStream stream);
  void ReapLoop();
  void Supervise();
  // Signals the group. Only while the leader is unreaped (exited_ false, or the reaper between its
  // waitid and wait4), so that the group id cannot have been reused.
  void SignalGroup(int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void JoinThreads();

  const pid_t pid_;
  const absl::Duration timeout_;
  const absl::Duration kill_grace_;
  OutputSink* const sink_;
  const absl::Time start_time_;
  const int stdout_fd_;
  const int stderr_fd_;
  const int stop_fd_;  // eventfd: readable once the readers must stop waiting for end of file
  const std::string start_error_;  // why exec failed, empty if it did not
  CommandCgroup* const cgroup_;
  uint32_t oom_kills_before_ = 0;  // the cgroup's count when the command started

  absl::Mutex mu_;
  bool cancel_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::string cancel_reason_ ABSL_GUARDED_BY(mu_);
  bool kill_now_ ABSL_GUARDED_BY(mu_) = false;  // set by the destructor: SIGKILL, no grace
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool timed_out_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;  // the leader exited and was reaped
  int wait_error_ ABSL_GUARDED_BY(mu_) = 0;   // errno of a failed wait, 0 if the wait worked
  int wait_status_ ABSL_GUARDED_BY(mu_) = 0;
  struct rusage rusage_ ABSL_GUARDED_BY(mu_) = {};
  absl::Time exit_time_ ABSL_GUARDED_BY(mu_);
  int readers_running_ ABSL_GUARDED_BY(mu_) = 2;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // exited, group gone, streams drained

  std::thread stdout_reader_;
  std::thread stderr_reader_;
  std::thread reaper_;
  std::thread supervisor_;
};

// The start time of process `pid`: field 22 of /proc/PID/stat, in clock ticks since boot. With the
// pid it names a process uniquely, for the agent's restart path. NotFound if there is no such
// process.
absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid);

// SIGKILLs process group `pgid` only if its leader `pgid` still exists, leads that group and
// started at `start_time`, so that a recycled pid is never hit. Returns true if it sent the signal.
// For groups that are not our children (after an agent restart), so a small window between the
// check and the kill remains in which the leader could exit and its pid be reused.
bool KillGroupIfSame(pid_t pgid, uint64_t start_time);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_EXEC_PROCESS_H_

#include "agent/exec/process.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <initializer_list>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "agent/exec/cgroup.h"
#include "agent/exec/spawn.h"
#include "common/duration.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

namespace v1 = ::kfleet::v1;

constexpr size_t kChunkBytes = 64 << 10;
// How long the readers wait for end of file once the whole group is dead. Only a process that
// left the group (setsid) can still hold a pipe then.
constexpr absl::Duration kDrainTimeout = absl::Seconds(2);
// What a reader still takes from its pipe once told to stop, so that a writer outside the group
// cannot keep it busy forever. Far more than a pipe holds.
constexpr size_t kMaxDrainBytes = 16 << 20;

int64_t Millis(const struct timeval& tv) {
  return static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000;
}

std::string SignalDetail(int sig) {
  const char* name = ::sigdescr_np(sig);
  return absl::StrCat("killed by signal ", sig, " (", name != nullptr ? name : "unknown signal",
                      ")");
}

// A limit as given: "64 MiB", "2 GiB", "1000000 bytes".
std::string LimitText(int64_t bytes) {
  for (auto [unit, name] : {std::pair<int64_t, const char*>{int64_t{1} << 30, "GiB"},
                            {int64_t{1} << 20, "MiB"},
                            {int64_t{1} << 10, "KiB"}}) {
    if (bytes % unit == 0) return absl::StrCat(bytes / unit, " ", name);
  }
  return absl::StrCat(bytes, " bytes");
}

// A measured amount: "64.0 MiB", "1.5 GiB".
std::string AmountText(int64_t bytes) {
  if (bytes >= int64_t{1} << 30) return absl::StrFormat("%.1f GiB", bytes / double{1 << 30});
  return absl::StrFormat("%.1f MiB", bytes / double{1 << 20});
}

std::string OomDetail(const v1::CommandResult& result) {
  std::string what = result.memory_max_bytes() > 0
                         ? absl::StrCat("OOM-killed: memory limit ",
                                        LimitText(result.memory_max_bytes()), " reached")
                         : std::string("OOM-killed by the kernel");
  std::string peak = result.memory_peak_bytes() > 0  // 0: a v2 kernel before 5.19
                         ? absl::StrCat("peak ", AmountText(result.memory_peak_bytes()), ", ")
                         : "";
  return absl::StrCat(what, " (", peak, result.oom_kills(),
                      result.oom_kills() == 1 ? " OOM kill)" : " OOM kills)");
}

struct ProcStat {
  pid_t pgrp = 0;
  uint64_t start_time = 0;
};

absl::StatusOr<ProcStat> ReadProcStat(pid_t pid) {
  if (pid <= 0) return absl::InvalidArgumentError(absl::StrCat("invalid pid ", pid));
  std::string path = absl::StrCat("/proc/", pid, "/stat");
  absl::StatusOr<std::string> text = ReadFile(path, 4096);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(absl::StrCat("no process with pid ", pid));
    }
    return text.status();
  }
  // "PID (COMM) STATE PPID PGRP ...": COMM may hold spaces and parentheses, so split after the last
  // ')'. The first field after it is field 3.
  size_t paren = text->rfind(')');
  if (paren == std::string::npos) {
    return absl::InternalError(absl::StrCat(path, ": unexpected format"));
  }
  std::vector<absl::string_view> fields = absl::StrSplit(absl::string_view(*text).substr(paren + 1),
                                                         absl::ByAnyChar(" \n"), absl::SkipEmpty());
  ProcStat stat;
  int pgrp = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[2], &pgrp) ||
      !absl::SimpleAtoi(fields[19], &stat.start_time)) {
    return absl::InternalError(absl::StrCat(path, ": unexpected format"));
  }
  stat.pgrp = pgrp;
  return stat;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Process>> Process::Start(const RunSpec& spec, OutputSink* sink) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return absl::InvalidArgumentError("command has no program to run: argv[0] must be set");
  }
  if (sink == nullptr) return absl::InvalidArgumentError("Process::Start needs an output sink");

  ScopedFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (stop.get() < 0) return ErrnoStatus("eventfd", errno);
  // An earlier phase of the same command may have had OOM kills in this cgroup.
  uint32_t oom_kills_before = 0;
  if (spec.cgroup != nullptr) {
    ASSIGN_OR_RETURN(CgroupCounters counters, spec.cgroup->ReadCounters());
    oom_kills_before = counters.oom_kills;
  }
  ASSIGN_OR_RETURN(SpawnedChild child, SpawnChild(spec));

  auto process = absl::WrapUnique(new Process(child.pid, spec, sink, child.start_time,
                                              child.stdout_fd.Release(), child.stderr_fd.Release(),
                                              stop.Release(), std::move(child.start_error)));
  Process* p = process.get();
  p->oom_kills_before_ = oom_kills_before;
  p->stdout_reader_ = std::thread([p] { p->ReadLoop(p->stdout_fd_, v1::STDOUT); });
  p->stderr_reader_ = std::thread([p] { p->ReadLoop(p->stderr_fd_, v1::STDERR); });
  p->reaper_ = std::thread([p] { p->ReapLoop(); });
  p->supervisor_ = std::thread([p] { p->Supervise(); });
  return process;
}

Process::Process(pid_t pid, const RunSpec& spec, OutputSink* sink, absl::Time start_time,
                 int stdout_fd, int stderr_fd, int stop_fd, std::string start_error)
    : pid_(pid),
      timeout_(spec.timeout),
      kill_grace_(spec.kill_grace),
      sink_(sink),
      start_time_(start_time),
      stdout_fd_(stdout_fd),
      stderr_fd_(stderr_fd),
      stop_fd_(stop_fd),
      start_error_(std::move(start_error)),
      cgroup_(spec.cgroup) {}

Process::~Process() {
  {
    absl::MutexLock lock(&mu_);
    kill_now_ = true;  // no effect once the command has ended
  }
  JoinThreads();
  // Only now: the readers poll these until they stop.
  ::close(stdout_fd_);
  ::close(stderr_fd_);
  ::close(stop_fd_);
}

void Process::JoinThreads() {
  for (std::thread* t : {&supervisor_, &reaper_, &stdout_reader_, &stderr_reader_}) {
    if (t->joinable()) t->join();
  }
}

void Process::Cancel(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (cancel_requested_ || exited_ || timed_out_) return;
  cancel_requested_ = true;
  cancel_reason_ = reason;
}

void Process::SignalGroup(int sig) { ::kill(-pid_, sig); }

void Process::ReadLoop(int fd, v1::LogStream stream) {
  std::unique_ptr<char[]> buf(new char[kChunkBytes]);
  bool stopping = false;
  size_t drained = 0;
  while (true) {
    if (!stopping) {
      struct pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      stopping = (fds[1].revents & POLLIN) != 0;
    }
    ssize_t n = ::read(fd, buf.get(), kChunkBytes);
    if (n > 0) {
      sink_->Write(stream, absl::string_view(buf.get(), n));
      if (stopping && (drained += n) >= kMaxDrainBytes) break;
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN && !stopping) continue;
    break;  // EAGAIN while stopping: all that was buffered is taken
  }
  absl::MutexLock lock(&mu_);
  --readers_running_;
}

void Process::ReapLoop() {
  siginfo_t info;
  int rc;
  // WNOWAIT leaves the leader a zombie, which keeps its pid, and so the group id, from being
  // reused until wait4 below: the rest of the group can still be killed safely.
  do {
    rc = ::waitid(P_PID, pid_, &info, WEXITED | WNOWAIT);
  } while (rc < 0 && errno == EINTR);
  int err = rc < 0 ? errno : 0;
  absl::Time exit_time = absl::Now();

  absl::MutexLock lock(&mu_);
  if (err == 0) {
    // Members left behind (a backgrounded grandchild) would hold the pipes open forever.
    SignalGroup(SIGKILL);
    int status = 0;
    struct rusage usage = {};
    pid_t got;
    do {
      got = ::wait4(pid_, &status, 0, &usage);
    } while (got < 0 && errno == EINTR);
    if (got == pid_) {
      wait_status_ = status;
      rusage_ = usage;
    } else {
      err = errno;
    }
  }
  wait_error_ = err;
  exit_time_ = exit_time;
  exited_ = true;
}

void Process::Supervise() {
  absl::MutexLock lock(&mu_);
  auto ended_or_asked = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return exited_ || cancel_requested_ || kill_now_;
  };
  // start_time_ + InfiniteDuration() is InfiniteFuture(): no timeout.
  mu_.AwaitWithDeadline(absl::Condition(&ended_or_asked), start_time_ + timeout_);
  if (!exited_) {
    if (kill_now_) {
      SignalGroup(SIGKILL);
    } else {
      if (cancel_requested_) {
        cancelled_ = true;
      } else {
        timed_out_ = true;
      }
      SignalGroup(SIGTERM);
      auto ended_or_hurried = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return exited_ || kill_now_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ended_or_hurried), kill_grace_);
      if (!exited_) SignalGroup(SIGKILL);
    }
  }
  mu_.Await(absl::Condition(&exited_));

  auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return readers_running_ == 0; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&drained), kDrainTimeout)) {
    uint64_t one = 1;
    ssize_t ignored = ::write(stop_fd_, &one, sizeof one);
    (void)ignored;
    mu_.Await(absl::Condition(&drained));
  }
  done_ = true;
}

v1::CommandResult Process::Wait() {
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }
  JoinThreads();

  absl::MutexLock lock(&mu_);
  v1::CommandResult result;
  result.set_wall_ms(absl::ToInt64Milliseconds(exit_time_ - start_time_));
  result.set_user_cpu_ms(Millis(rusage_.ru_utime));
  result.set_system_cpu_ms(Millis(rusage_.ru_stime));
  result.set_max_rss_bytes(static_cast<int64_t>(rusage_.ru_maxrss) * 1024);
  result.set_exit_code(-1);
  // The leader is reaped and its group killed: the counters are final, but for processes that
  // left the group.
  if (cgroup_ != nullptr) {
    result.set_cgroup(CgroupModeName(cgroup_->mode()));
    result.set_memory_max_bytes(cgroup_->limit_bytes());
    absl::StatusOr<CgroupCounters> counters = cgroup_->ReadCounters();
    if (counters.ok()) {
      result.set_memory_peak_bytes(counters->peak_bytes);
      if (counters->oom_kills > oom_kills_before_) {
        result.set_oom_kills(counters->oom_kills - oom_kills_before_);
      }
    } else {
      LogWarning(absl::StrCat("process ", pid_, ": ", counters.status().message()));
    }
  }
  if (wait_error_ != 0) {
    result.set_verdict(v1::INFRA_ERROR);
    result.set_detail(
        absl::StrCat("cannot wait for process ", pid_, ": ", ::strerror(wait_error_)));
    return result;
  }

  std::string ended;
  if (WIFEXITED(wait_status_)) {
    result.set_exit_code(WEXITSTATUS(wait_status_));
    ended = absl::StrCat("exited with status ", WEXITSTATUS(wait_status_));
  } else if (WIFSIGNALED(wait_status_)) {
    result.set_signal(WTERMSIG(wait_status_));
    ended = SignalDetail(WTERMSIG(wait_status_));
  }

  if (timed_out_) {
    result.set_verdict(v1::TIMEOUT);
    result.set_timed_out(true);
    result.set_detail(absl::StrCat("timed out after ", kfleet::ShortDuration(timeout_)));
  } else if (cancelled_) {
    result.set_verdict(v1::CANCELLED);
    result.set_cancelled(true);
    result.set_detail(cancel_reason_);
  } else if (!start_error_.empty()) {
    result.set_verdict(v1::FAIL);
    result.set_detail(start_error_);
  } else if (result.oom_kills() > 0 && result.exit_code() != 0) {
    result.set_verdict(v1::FAIL);
    result.set_oom_killed(true);
    result.set_detail(OomDetail(result));
  } else if (result.exit_code() == 0) {
    result.set_verdict(v1::PASS);
  } else {
    result.set_verdict(v1::FAIL);
    result.set_detail(ended);
  }
  return result;
}

absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid) {
  ASSIGN_OR_RETURN(ProcStat stat, ReadProcStat(pid));
  return stat.start_time;
}

bool KillGroupIfSame(pid_t pgid, uint64_t start_time) {
  absl::StatusOr<ProcStat> stat = ReadProcStat(pgid);
  if (!stat.ok() || stat->start_time != start_time || stat->pgrp != pgid) return false;
  return ::kill(-pgid, SIGKILL) == 0;
}

}  // namespace kfleet::agent

#include "agent/exec/process.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kfleet::agent {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::kfleet::v1;

// Keeps everything it is given.
class RecordingSink : public OutputSink {
 public:
  void Write(v1::LogStream stream, absl::string_view data) override {
    absl::MutexLock lock(&mu_);
    (stream == v1::STDOUT ? out_ : err_).append(data.data(), data.size());
  }

  std::string Stdout() {
    absl::MutexLock lock(&mu_);
    return out_;
  }
  std::string Stderr() {
    absl::MutexLock lock(&mu_);
    return err_;
  }

  // Waits until stdout holds `n` complete lines and returns them, or an empty vector on timeout.
  std::vector<std::string> AwaitStdoutLines(int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::count(out_.begin(), out_.end(), '\n') >= n;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&enough), timeout)) return {};
    std::vector<std::string> lines = absl::StrSplit(out_, '\n', absl::SkipEmpty());
    lines.resize(n);
    return lines;
  }

 private:
  absl::Mutex mu_;
  std::string out_ ABSL_GUARDED_BY(mu_);
  std::string err_ ABSL_GUARDED_BY(mu_);
};

// FNV-1a over a byte stream, so that 20 MB need not be kept.
class Fnv {
 public:
  void Add(absl::string_view data) {
    for (unsigned char c : data) hash_ = (hash_ ^ c) * 1099511628211ULL;
    size_ += data.size();
  }
  uint64_t hash() const { return hash_; }
  size_t size() const { return size_; }

 private:
  uint64_t hash_ = 14695981039346656037ULL;
  size_t size_ = 0;
};

class HashingSink : public OutputSink {
 public:
  void Write(v1::LogStream stream, absl::string_view data) override {
    absl::MutexLock lock(&mu_);
    (stream == v1::STDOUT ? out_ : err_).Add(data);
    max_chunk_ = std::max(max_chunk_, data.size());
  }

  absl::Mutex mu_;
  Fnv out_ ABSL_GUARDED_BY(mu_);
  Fnv err_ ABSL_GUARDED_BY(mu_);
  size_t max_chunk_ ABSL_GUARDED_BY(mu_) = 0;
};

// The output of `seq 1 n`, cut to `limit` bytes.
std::string Seq(int n, size_t limit) {
  std::string out;
  for (int i = 1; i <= n && out.size() < limit; ++i) absl::StrAppend(&out, i, "\n");
  out.resize(std::min(out.size(), limit));
  return out;
}

RunSpec Sh(const std::string& script) { return RunSpec{{"sh", "-c", script}}; }

v1::CommandResult RunToEnd(const RunSpec& spec, OutputSink* sink) {
  absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(spec, sink);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return {};
  return (*process)->Wait();
}

// True once `pid` has ended: it no longer exists, or is a zombie whose parent (after reparenting,
// init, which we do not control) has not reaped it yet. Waits up to 5 s, since a killed process
// closes its files, which ends our reads, shortly before it becomes a zombie.
bool Ended(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  struct pollfd pfd = {fd, POLLIN, 0};
  int rc = ::poll(&pfd, 1, 5000);
  ::close(fd);
  return rc == 1;
}

std::vector<pid_t> Pids(const std::vector<std::string>& lines) {
  std::vector<pid_t> pids;
  for (const std::string& line : lines) {
    int pid = 0;
    EXPECT_TRUE(absl::SimpleAtoi(line, &pid)) << line;
    pids.push_back(pid);
  }
  return pids;
}

// Validates that stdout and stderr arrive separately, each in order, and a clean exit passes.
TEST(ProcessTest, SeparatesStdoutAndStderrInOrder) {
  RecordingSink sink;
  v1::CommandResult result = RunToEnd(
      Sh("echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3; echo err3 >&2"), &sink);
  EXPECT_EQ(result.verdict(), v1::PASS);
  EXPECT_EQ(result.exit_code(), 0);
  EXPECT_EQ(result.signal(), 0);
  EXPECT_EQ(result.detail(), "");
  EXPECT_EQ(sink.Stdout(), "out1\nout2\nout3\n");
  EXPECT_EQ(sink.Stderr(), "err1\nerr2\nerr3\n");
}

// Validates that 20 MB of output arrive whole and in order, in chunks of at most 64 KiB.
TEST(ProcessTest, StreamsLargeOutputInBoundedChunks) {
  constexpr size_t kBytes = 20'000'000;
  HashingSink sink;
  v1::CommandResult result = RunToEnd(Sh(absl::StrCat("seq 1 3000000 | head -c ", kBytes)), &sink);
  EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
  Fnv want;
  want.Add(Seq(3000000, kBytes));
  ASSERT_EQ(want.size(), kBytes);
  absl::MutexLock lock(&sink.mu_);
  EXPECT_EQ(sink.out_.size(), kBytes);
  EXPECT_EQ(sink.out_.hash(), want.hash());
  EXPECT_EQ(sink.err_.size(), 0u);
  EXPECT_LE(sink.max_chunk_, 64u << 10);
  EXPECT_GT(sink.max_chunk_, 0u);
}

// Validates that a non-zero exit fails with the status in exit_code and in words.
TEST(ProcessTest, ReportsExitStatus) {
  RecordingSink sink;
  v1::CommandResult result = RunToEnd(Sh("exit 3"), &sink);
  EXPECT_EQ(result.verdict(), v1::FAIL);
  EXPECT_EQ(result.exit_code(), 3);
  EXPECT_EQ(result.signal(), 0);
  EXPECT_EQ(result.detail(), "exited with status 3");
}

// Validates that death by a signal fails with the signal, its name, and exit_code -1.
TEST(ProcessTest, ReportsDeathBySignal) {
  RecordingSink sink;
  v1::CommandResult result = RunToEnd(Sh("kill -KILL $$"), &sink);
  EXPECT_EQ(result.verdict(), v1::FAIL);
  EXPECT_EQ(result.exit_code(), -1);
  EXPECT_EQ(result.signal(), SIGKILL);
  EXPECT_EQ(result.detail(), "killed by signal 9 (Killed)");
  EXPECT_FALSE(result.cancelled());
  EXPECT_FALSE(result.timed_out());
}

// Validates that a program not in PATH is reported as exit 127 with the reason, not a Start error.
TEST(ProcessTest, MissingProgramExits127WithReason) {
  RecordingSink sink;
  v1::CommandResult result = RunToEnd(RunSpec{{"kfleet-no-such-program", "arg"}}, &sink);
  EXPECT_EQ(result.verdict(), v1::FAIL);
  EXPECT_EQ(result.exit_code(), 127);
  EXPECT_EQ(result.detail(), "cannot run \"kfleet-no-such-program\": No such file or directory");
  EXPECT_EQ(sink.Stdout(), "");
  EXPECT_EQ(sink.Stderr(), "");
}

// Validates that a file that is not executable is reported with its reason.
TEST(ProcessTest, NonExecutableProgramExits127WithReason) {
  RecordingSink sink;
  v1::CommandResult result = RunToEnd(RunSpec{{"/dev/null"}}, &sink);
  EXPECT_EQ(result.exit_code(), 127);
  EXPECT_EQ(result.detail(), "cannot run \"/dev/null\": Permission denied");
}

// Validates that a missing working directory is reported as exit 127 naming the directory.
TEST(ProcessTest, MissingDirectoryExits127WithReason) {
  RecordingSink sink;
  RunSpec spec{{"true"}};
  spec.dir = "/nonexistent/kfleet";
  v1::CommandResult result = RunToEnd(spec, &sink);
  EXPECT_EQ(result.verdict(), v1::FAIL);
  EXPECT_EQ(result.exit_code(), 127);
  EXPECT_EQ(result.detail(),
            "cannot run \"true\": cannot change to directory \"/nonexistent/kfleet\": No such file "
            "or directory");
}

// Validates that env is added to the inherited environment, dir is the working directory, stdin is
// empty, and no descriptor of ours beyond 0-2 reaches the command.
TEST(ProcessTest, PassesEnvironmentDirectoryAndOnlyStandardDescriptors) {
  char tmpl[] = "/tmp/kfleet-exec-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  ASSERT_EQ(::setenv("KFLEET_INHERITED", "yes", 1), 0);
  RecordingSink sink;
  RunSpec spec = Sh("echo \"$KFLEET_ADDED $KFLEET_INHERITED\"; pwd; cat; ls /proc/self/fd | wc -l");
  spec.env["KFLEET_ADDED"] = "added";
  spec.dir = dir;
  v1::CommandResult result = RunToEnd(spec, &sink);
  EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
  // ls sees 0-2 and its own directory handle.
  EXPECT_EQ(sink.Stdout(), absl::StrCat("added yes\n", dir, "\n4\n"));
  ::rmdir(dir.c_str());
}

// Validates that env can replace PATH, and the program is then looked up in the new PATH.
TEST(ProcessTest, LooksUpProgramInCommandPath) {
  RecordingSink sink;
  RunSpec spec{{"sh", "-c", "true"}};
  spec.env["PATH"] = "/nonexistent";
  v1::CommandResult result = RunToEnd(spec, &sink);
  EXPECT_EQ(result.exit_code(), 127);
  EXPECT_EQ(result.detail(), "cannot run \"sh\": No such file or directory");
}

// Validates that a timeout ends the command with TIMEOUT and leaves no process behind.
TEST(ProcessTest, TimeoutEndsTheCommand) {
  RecordingSink sink;
  RunSpec spec{{"sleep", "1000"}};
  spec.timeout = absl::Milliseconds(300);
  auto process = Process::Start(spec, &sink);
  ASSERT_TRUE(process.ok()) << process.status();
  pid_t pid = (*process)->pid();
  v1::CommandResult result = (*process)->Wait();
  EXPECT_EQ(result.verdict(), v1::TIMEOUT);
  EXPECT_TRUE(result.timed_out());
  EXPECT_FALSE(result.cancelled());
  EXPECT_EQ(result.detail(), "timed out after 300ms");
  EXPECT_EQ(result.signal(), SIGTERM);
  EXPECT_GE(result.wall_ms(), 300);
  EXPECT_LT(result.wall_ms(), 5000);
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

// Validates that cancel ends the whole group, grandchildren included, and reports the reason.
TEST(ProcessTest, CancelKillsGrandchildren) {
  RecordingSink sink;
  auto process = Process::Start(Sh("sleep 1000 & echo $!; sleep 1000 & echo $!; wait"), &sink);
  ASSERT_TRUE(process.ok()) << process.status();
  std::vector<pid_t> grandchildren = Pids(sink.AwaitStdoutLines(2, absl::Seconds(10)));
  ASSERT_EQ(grandchildren.size(), 2u);
  for (pid_t pid : grandchildren) ASSERT_EQ(::kill(pid, 0), 0);

  (*process)->Cancel("cancelled by alice");
  v1::CommandResult result = (*process)->Wait();
  EXPECT_EQ(result.verdict(), v1::CANCELLED);
  EXPECT_TRUE(result.cancelled());
  EXPECT_EQ(result.detail(), "cancelled by alice");
  EXPECT_LT(result.wall_ms(), 5000);
  EXPECT_EQ(::kill((*process)->pid(), 0), -1);
  for (pid_t pid : grandchildren) {
    EXPECT_TRUE(Ended(pid)) << "grandchild " << pid << " survived the cancel";
    ::kill(pid, SIGKILL);
  }
}

// Validates that a command ignoring SIGTERM is SIGKILLed once the grace period has passed.
TEST(ProcessTest, CommandIgnoringSigtermIsKilledAfterGrace) {
  RecordingSink sink;
  RunSpec spec = Sh("trap '' TERM; echo ready; sleep 1000");
  spec.kill_grace = absl::Milliseconds(500);
  auto process = Process::Start(spec, &sink);
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_EQ(sink.AwaitStdoutLines(1, absl::Seconds(10)).size(), 1u);

  absl::Time cancelled_at = absl::Now();
  (*process)->Cancel("stop");
  (*process)->Cancel("ignored: only the first cancel counts");
  v1::CommandResult result = (*process)->Wait();
  absl::Duration took = absl::Now() - cancelled_at;
  EXPECT_EQ(result.verdict(), v1::CANCELLED);
  EXPECT_EQ(result.detail(), "stop");
  EXPECT_EQ(result.signal(), SIGKILL);
  EXPECT_GE(took, absl::Milliseconds(500));
  EXPECT_LT(took, absl::Seconds(5));
}

// Validates that when the leader exits, a backgrounded grandchild holding the pipe is killed and
// Wait returns at once with the leader's status.
TEST(ProcessTest, LeaderExitEndsBackgroundedGrandchild) {
  RecordingSink sink;
  auto process = Process::Start(Sh("sleep 1000 & echo $!"), &sink);
  ASSERT_TRUE(process.ok()) << process.status();
  absl::Time start = absl::Now();
  v1::CommandResult result = (*process)->Wait();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));  // well under the 2 s drain timeout
  EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
  std::vector<pid_t> grandchild = Pids(sink.AwaitStdoutLines(1, absl::ZeroDuration()));
  ASSERT_EQ(grandchild.size(), 1u);
  EXPECT_TRUE(Ended(grandchild[0]));
  ::kill(grandchild[0], SIGKILL);
}

// Validates that a process that left the group and keeps the pipe open cannot hold Wait forever.
TEST(ProcessTest, EscapedProcessHoldingThePipeDoesNotHangWait) {
  char tmpl[] = "/tmp/kfleet-exec-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  RecordingSink sink;
  // The leader exits only once the escapee is in its own session, so the group kill misses it.
  RunSpec spec =
      Sh("setsid sh -c 'echo $$; : > ready; exec sleep 1000' & "
         "while [ ! -e ready ]; do sleep 0.01; done");
  spec.dir = dir;
  auto process = Process::Start(spec, &sink);
  ASSERT_TRUE(process.ok()) << process.status();
  v1::CommandResult result = (*process)->Wait();
  EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
  std::vector<pid_t> escapee = Pids(sink.AwaitStdoutLines(1, absl::ZeroDuration()));
  ASSERT_EQ(escapee.size(), 1u);
  EXPECT_EQ(::kill(escapee[0], 0), 0) << "the escapee should still be running";
  ::kill(escapee[0], SIGKILL);
  ::unlink((dir + "/ready").c_str());
  ::rmdir(dir.c_str());
}

// Blocks stdout writes until released.
class BlockingSink : public OutputSink {
 public:
  void Write(v1::LogStream stream, absl::string_view data) override {
    if (stream == v1::STDOUT) {
      if (!first_write_.HasBeenNotified()) first_write_.Notify();
      release_.WaitForNotification();
    }
    absl::MutexLock lock(&mu_);
    (stream == v1::STDOUT ? out_ : err_).Add(data);
  }

  absl::Notification first_write_;
  absl::Notification release_;
  absl::Mutex mu_;
  Fnv out_ ABSL_GUARDED_BY(mu_);
  Fnv err_ ABSL_GUARDED_BY(mu_);
};

// Validates that a sink that blocks holds the command back, and that nothing is lost.
TEST(ProcessTest, BlockingSinkSlowsTheCommandWithoutLosingData) {
  BlockingSink sink;
  auto process = Process::Start(Sh("seq 1 200000; echo finished >&2"), &sink);
  ASSERT_TRUE(process.ok()) << process.status();
  sink.first_write_.WaitForNotification();
  // seq needs milliseconds for its 1.3 MB; blocked on the full pipe it cannot finish. There is no
  // event for "still blocked", so give it ample time to prove it.
  absl::SleepFor(absl::Milliseconds(300));
  {
    absl::MutexLock lock(&sink.mu_);
    EXPECT_EQ(sink.err_.size(), 0u) << "the command ran on past a blocked sink";
  }
  EXPECT_EQ(::kill((*process)->pid(), 0), 0);
  sink.release_.Notify();
  v1::CommandResult result = (*process)->Wait();
  EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
  Fnv want;
  want.Add(Seq(200000, std::string::npos));
  absl::MutexLock lock(&sink.mu_);
  EXPECT_EQ(sink.out_.size(), want.size());
  EXPECT_EQ(sink.out_.hash(), want.hash());
  EXPECT_EQ(sink.err_.size(), 9u);
}

// Validates that wall time, CPU time and peak RSS come from the command.
TEST(ProcessTest, ReportsResourceUsage) {
  RecordingSink sink;
  // dd reads 100 MiB from /dev/zero into one buffer, which makes every page of it resident.
  v1::CommandResult result =
      RunToEnd(RunSpec{{"dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"}}, &sink);
  EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
  EXPECT_GE(result.max_rss_bytes(), 100LL << 20);
  EXPECT_LT(result.max_rss_bytes(), 1LL << 30);
  EXPECT_GT(result.user_cpu_ms() + result.system_cpu_ms(), 0);
  EXPECT_GE(result.wall_ms(), result.user_cpu_ms() + result.system_cpu_ms() - 10);
  EXPECT_LT(result.wall_ms(), 30000);
}

// Validates that Cancel after the command ended changes nothing.
TEST(ProcessTest, CancelAfterExitIsIgnored) {
  RecordingSink sink;
  auto process = Process::Start(Sh("echo done"), &sink);
  ASSERT_TRUE(process.ok()) << process.status();
  // Once the pid is gone the runner has reaped it, and recorded the exit under the same lock that
  // Cancel takes. Nothing signals "reaped", so poll.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (::kill((*process)->pid(), 0) == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(::kill((*process)->pid(), 0), -1);
  (*process)->Cancel("too late");
  v1::CommandResult result = (*process)->Wait();
  EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
  EXPECT_FALSE(result.cancelled());
}

// Validates that destroying a running Process kills its whole group.
TEST(ProcessTest, DestructorKillsTheGroup) {
  RecordingSink sink;
  auto process = Process::Start(Sh("sleep 1000 & echo $!; wait"), &sink);
  ASSERT_TRUE(process.ok()) << process.status();
  std::vector<pid_t> grandchild = Pids(sink.AwaitStdoutLines(1, absl::Seconds(10)));
  ASSERT_EQ(grandchild.size(), 1u);
  pid_t leader = (*process)->pid();
  process->reset();
  EXPECT_EQ(::kill(leader, 0), -1);
  EXPECT_TRUE(Ended(grandchild[0]));
  ::kill(grandchild[0], SIGKILL);
}

// Validates that Start rejects a command without a program.
TEST(ProcessTest, EmptyArgvIsInvalid) {
  RecordingSink sink;
  auto process = Process::Start(RunSpec{}, &sink);
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(process.status().message(), HasSubstr("argv"));
}

// Validates that ProcessStartTime identifies a process and KillGroupIfSame spares a pid whose
// start time does not match.
TEST(ProcessTest, KillGroupIfSameChecksStartTime) {
  auto self = ProcessStartTime(::getpid());
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_GT(*self, 0u);
  auto missing = ProcessStartTime(2'000'000'000);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(KillGroupIfSame(2'000'000'000, 1));

  RecordingSink sink;
  auto process = Process::Start(Sh("sleep 1000 & echo $!; wait"), &sink);
  ASSERT_TRUE(process.ok()) << process.status();
  std::vector<pid_t> grandchild = Pids(sink.AwaitStdoutLines(1, absl::Seconds(10)));
  ASSERT_EQ(grandchild.size(), 1u);
  pid_t pid = (*process)->pid();
  auto start = ProcessStartTime(pid);
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_GE(*start, *self);

  EXPECT_FALSE(KillGroupIfSame(pid, *start + 1));
  EXPECT_EQ(::kill(pid, 0), 0);
  // The grandchild leads no group: its pid names no group to kill.
  auto grandchild_start = ProcessStartTime(grandchild[0]);
  ASSERT_TRUE(grandchild_start.ok());
  EXPECT_FALSE(KillGroupIfSame(grandchild[0], *grandchild_start));
  EXPECT_EQ(::kill(grandchild[0], 0), 0);

  EXPECT_TRUE(KillGroupIfSame(pid, *start));
  v1::CommandResult result = (*process)->Wait();
  EXPECT_EQ(result.signal(), SIGKILL);
  EXPECT_EQ(result.verdict(), v1::FAIL);
  EXPECT_TRUE(Ended(grandchild[0]));
}

}  // namespace
}  // namespace kfleet::agent

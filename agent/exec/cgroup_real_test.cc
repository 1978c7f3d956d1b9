// Real memory cgroups on the machine running the tests: needs root and a usable memory controller
// (v1 on CI), skipped otherwise. Each test uses its own parent directory so that tests running in
// parallel do not remove each other's cgroups as leftovers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "agent/exec/cgroup.h"
#include "agent/exec/process.h"
#include "agent/exec/stdout_sink.h"

namespace kfleet::agent {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::kfleet::v1;

bool DirExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// True once `pid` has ended (gone, or a zombie of init); waits up to 5 s.
bool Ended(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  struct pollfd pfd = {fd, POLLIN, 0};
  int rc = ::poll(&pfd, 1, 5000);
  ::close(fd);
  return rc == 1;
}

class RealCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "real memory cgroups need root";
    CgroupOptions options;
    options.parent_name = absl::StrCat("kfleet-test-", ::getpid());
    options.mount_cgroup2 = nullptr;  // never mount on the test machine
    manager_ = CgroupManager::Detect(options);
    if (manager_->mode() == CgroupMode::kNone) GTEST_SKIP() << manager_->detail();
  }
  void TearDown() override {
    if (manager_ != nullptr && !manager_->parent_dir().empty()) {
      ::rmdir(manager_->parent_dir().c_str());
    }
  }

  v1::CommandResult Run(RunSpec spec, CommandCgroup* cgroup, StdoutSink* sink) {
    spec.cgroup = cgroup;
    spec.timeout = absl::Seconds(60);
    absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(spec, sink);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return {};
    return (*process)->Wait();
  }

  std::unique_ptr<CgroupManager> manager_;
};

// Validates that a command runs in its own cgroup, reports its peak memory and no OOM kill, and
// that the cgroup is gone once removed.
TEST_F(RealCgroupTest, CommandRunsInItsCgroupAndReportsPeak) {
  absl::StatusOr<std::unique_ptr<CommandCgroup>> cgroup = manager_->Create("c-join", 0);
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  std::string dir = (*cgroup)->dir();
  StdoutSink sink;
  // tail holds all 32 MiB at once (there is no newline to cut at): a peak well above a shell's.
  v1::CommandResult result =
      Run(RunSpec{{"sh", "-c", "cat /proc/self/cgroup; head -c 33554432 /dev/zero | tail | wc -c"}},
          cgroup->get(), &sink);
  EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
  EXPECT_EQ(result.cgroup(), CgroupModeName(manager_->mode()));
  EXPECT_GT(result.memory_peak_bytes(), 16 << 20);
  EXPECT_EQ(result.oom_kills(), 0u);
  EXPECT_FALSE(result.oom_killed());
  EXPECT_EQ(result.memory_max_bytes(), 0);

  const std::string want = manager_->mode() == CgroupMode::kV2
                               ? absl::StrCat("0::", (*cgroup)->path())
                               : absl::StrCat(":memory:", (*cgroup)->path());
  EXPECT_THAT(sink.Stdout(), HasSubstr(want + "\n"));
  EXPECT_THAT(sink.Stdout(), HasSubstr("33554432\n"));
  EXPECT_EQ(manager_->CommandIdForCgroupPath((*cgroup)->path()), "c-join");

  ASSERT_TRUE(DirExists(dir));
  cgroup->reset();
  EXPECT_FALSE(DirExists(dir));
}

// Validates that a command that allocates without end under a 64 MiB limit is OOM-killed and
// reported as such: FAIL, oom_killed, the kill counted, the peak at the limit.
TEST_F(RealCgroupTest, CommandOverItsLimitIsOomKilled) {
  constexpr int64_t kLimit = 64 << 20;
  absl::StatusOr<std::unique_ptr<CommandCgroup>> cgroup = manager_->Create("c-oom", kLimit);
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  std::string dir = (*cgroup)->dir();
  StdoutSink sink;
  // tail keeps the last lines; /dev/zero has no newline, so it keeps everything.
  v1::CommandResult result = Run(RunSpec{{"tail", "/dev/zero"}}, cgroup->get(), &sink);
  EXPECT_EQ(result.verdict(), v1::FAIL);
  EXPECT_TRUE(result.oom_killed());
  EXPECT_GE(result.oom_kills(), 1u);
  EXPECT_EQ(result.signal(), SIGKILL);
  EXPECT_EQ(result.memory_max_bytes(), kLimit);
  EXPECT_GT(result.memory_peak_bytes(), kLimit - (8 << 20));
  EXPECT_LE(result.memory_peak_bytes(), kLimit);
  EXPECT_THAT(result.detail(), HasSubstr("OOM-killed: memory limit 64 MiB reached (peak "));
  EXPECT_THAT(result.detail(), HasSubstr(" MiB, 1 OOM kill)"));
  cgroup->reset();
  EXPECT_FALSE(DirExists(dir));
}

// Validates that a shell whose child is OOM-killed and which then fails is oom_killed too, and one
// that carries on and exits 0 passes with the kill still counted.
TEST_F(RealCgroupTest, ChildOomKillFailsOnlyAFailingCommand) {
  for (bool carry_on : {false, true}) {
    absl::StatusOr<std::unique_ptr<CommandCgroup>> cgroup =
        manager_->Create(carry_on ? "c-on" : "c-fail", 32 << 20);
    ASSERT_TRUE(cgroup.ok()) << cgroup.status();
    StdoutSink sink;
    std::string script = carry_on ? "tail /dev/zero; echo survived" : "tail /dev/zero; exit $?";
    v1::CommandResult result = Run(RunSpec{{"sh", "-c", script}}, cgroup->get(), &sink);
    EXPECT_EQ(result.oom_kills(), 1u) << script;
    if (carry_on) {
      EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
      EXPECT_FALSE(result.oom_killed());
      EXPECT_EQ(sink.Stdout(), "survived\n");
    } else {
      EXPECT_EQ(result.verdict(), v1::FAIL);
      EXPECT_EQ(result.exit_code(), 128 + SIGKILL);
      EXPECT_TRUE(result.oom_killed());
      EXPECT_THAT(result.detail(), HasSubstr("OOM-killed: memory limit 32 MiB reached"));
    }
  }
}

// Validates that removing a cgroup kills a process that left the command's process group, which
// the runner alone cannot reach.
TEST_F(RealCgroupTest, RemoveKillsProcessesThatLeftTheGroup) {
  absl::StatusOr<std::unique_ptr<CommandCgroup>> cgroup = manager_->Create("c-escape", 0);
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  StdoutSink sink;
  v1::CommandResult result =
      Run(RunSpec{{"sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!"}},
          cgroup->get(), &sink);
  EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripSuffix(sink.Stdout(), "\n"), &pid)) << sink.Stdout();
  ASSERT_EQ(::kill(pid, 0), 0) << "the escaped sleep should still run";
  std::string dir = (*cgroup)->dir();
  absl::Status removed = (*cgroup)->Remove();
  EXPECT_TRUE(removed.ok()) << removed;
  EXPECT_FALSE(DirExists(dir));
  EXPECT_TRUE(Ended(pid));
}

// Validates that removing a cgroup also removes the cgroups made inside it.
TEST_F(RealCgroupTest, RemoveTakesNestedCgroups) {
  absl::StatusOr<std::unique_ptr<CommandCgroup>> cgroup = manager_->Create("c-nest", 0);
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  std::string dir = (*cgroup)->dir();
  ASSERT_EQ(::mkdir((dir + "/a").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir + "/a/b").c_str(), 0755), 0);
  absl::Status removed = (*cgroup)->Remove();
  EXPECT_TRUE(removed.ok()) << removed;
  EXPECT_FALSE(DirExists(dir));
}

// Validates that a command whose cgroup is gone does not start, rather than run unaccounted.
TEST_F(RealCgroupTest, StartFailsWithoutItsCgroup) {
  absl::StatusOr<std::unique_ptr<CommandCgroup>> cgroup = manager_->Create("c-gone", 0);
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  ASSERT_TRUE((*cgroup)->Remove().ok());
  StdoutSink sink;
  RunSpec spec{{"true"}};
  spec.cgroup = cgroup->get();
  absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(spec, &sink);
  EXPECT_EQ(process.status().code(), absl::StatusCode::kNotFound) << process.status();
}

// Validates that a second Detect removes the empty cgroup a first run left behind.
TEST_F(RealCgroupTest, DetectRemovesEmptyLeftovers) {
  absl::StatusOr<std::unique_ptr<CommandCgroup>> cgroup = manager_->Create("c-left", 0);
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  std::string dir = (*cgroup)->dir();
  CgroupOptions options;
  options.parent_name = absl::StrCat("kfleet-test-", ::getpid());
  options.mount_cgroup2 = nullptr;
  std::unique_ptr<CgroupManager> again = CgroupManager::Detect(options);
  EXPECT_EQ(again->mode(), manager_->mode());
  EXPECT_FALSE(DirExists(dir));
  EXPECT_TRUE((*cgroup)->Remove().ok());  // already gone is fine
}

}  // namespace
}  // namespace kfleet::agent

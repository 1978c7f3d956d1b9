#include "controller/local_builder.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace kfleet::controller {

absl::StatusOr<std::unique_ptr<LocalBuilder>> LocalBuilder::Start(LocalBuilderOptions options) {
  if (options.agent_binary.empty() || ::access(options.agent_binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the local builder needs the kfleet-agent binary (", options.agent_binary,
                     " is not executable): pass --agent-binary PATH, or --local-builder=false "
                     "and start a builder agent yourself"));
  }
  RETURN_IF_ERROR(MakeDirs(options.state_dir));
  std::unique_ptr<LocalBuilder> b(new LocalBuilder(std::move(options)));
  ASSIGN_OR_RETURN(pid_t pid, b->Spawn());
  {
    absl::MutexLock lock(&b->mu_);
    b->pid_ = pid;
  }
  b->supervisor_ = std::thread([raw = b.get()] { raw->Supervise(); });
  return b;
}

absl::StatusOr<pid_t> LocalBuilder::Spawn() {
  std::vector<std::string> args = {options_.agent_binary,
                                   "--controller",
                                   options_.controller,
                                   "--state-dir",
                                   options_.state_dir,
                                   "--name",
                                   options_.name,
                                   "--labels",
                                   "role=builder",
                                   "--reconnect-max",
                                   "2s"};
  if (options_.insecure) args.push_back("--insecure");
  if (!options_.token_file.empty()) {
    args.insert(args.end(),
                {"--token-file", options_.token_file, "--ca-cert", options_.ca_cert_file});
  }
  if (!options_.kernel_dir.empty()) {
    args.push_back("--kernel-dir");
    args.push_back(options_.kernel_dir);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = options_.log_file.empty() ? "/dev/null" : options_.log_file;
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) return ErrnoStatus(absl::StrCat("open ", log), errno);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(out);
    return ErrnoStatus("fork", err);
  }
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec. It dies with the controller, even a
    // SIGKILLed one, so no builder outlives the controller that started it. The controller
    // blocks signals for its signal thread; the agent must not inherit that.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int in = ::open("/dev/null", O_RDONLY);
    if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) ::_exit(127);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out);
  LogInfo(absl::StrCat("local builder: kfleet-agent pid ", pid, " (state in ", options_.state_dir,
                       ", log ", log, ")"));
  return pid;
}

void LocalBuilder::Supervise() {
  while (true) {
    pid_t pid;
    {
      absl::MutexLock lock(&mu_);
      pid = pid_;
    }
    int status = 0;
    absl::Time started = absl::Now();
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    LogWarning(absl::StrCat("local builder pid ", pid, " exited (status ", status,
                            "); starting it again"));
    // Not faster than once every 5 s, and Stop() wakes the wait.
    mu_.AwaitWithTimeout(
        absl::Condition(&stopping_),
        std::max(absl::ZeroDuration(), absl::Seconds(5) - (absl::Now() - started)));
    if (stopping_) return;
    absl::StatusOr<pid_t> next = Spawn();
    if (!next.ok()) {
      LogError(absl::StrCat("local builder: ", next.status().message()));
      return;
    }
    pid_ = *next;
  }
}

LocalBuilder::~LocalBuilder() {
  pid_t pid;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    pid = pid_;
  }
  ::kill(pid, SIGTERM);
  // The supervisor reaps it; SIGKILL if it takes longer than the agent's own stop (a few s).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = ::kill(pid, 0) != 0;
    if (!gone) absl::SleepFor(absl::Milliseconds(50));
  }
  if (!gone) ::kill(pid, SIGKILL);
  if (supervisor_.joinable()) supervisor_.join();
}

}  // namespace kfleet::controller

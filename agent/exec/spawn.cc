#include "agent/exec/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <initializer_list>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/exec/cgroup.h"
#include "agent/exec/oom_score.h"
#include "common/files.h"
#include "common/status_macros.h"

extern char** environ;

namespace kfleet::agent {
namespace {

// PATH when the command's environment has none, as glibc's execvp assumes.
constexpr char kDefaultPath[] = "/bin:/usr/bin";

// Where the child failed before exec; sent to the parent over the report pipe.
enum ChildStage : int {
  kStageSetup = 1,
  kStageDir = 2,
  kStageExec = 3,
  kStageCgroup = 4,
  kStageOomScore = 5,
};
struct ChildError {
  int stage;
  int err;
};

absl::Status MakePipe(ScopedFd* read_end, ScopedFd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  read_end->Reset(fds[0]);
  write_end->Reset(fds[1]);
  return absl::OkStatus();
}

// Everything the child needs, prepared before fork: between fork and exec the child may only make
// async-signal-safe calls, so it must not allocate.
struct ChildPlan {
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<std::string> candidates;  // where to try argv[0], in PATH order
  std::string sh = "/bin/sh";
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::vector<char*> sh_argv;  // {"/bin/sh", <candidate>, argv[1:]...}, for ENOEXEC
  std::string dir;
  int max_fd = 0;
  // The agent protects itself from the OOM killer (oom_score_adj -1000, inherited over fork and
  // exec); a command must not be protected.
  bool reset_oom_score = false;
};

void MakeChildPlan(const RunSpec& spec, ChildPlan* plan) {
  plan->argv_storage = spec.argv;
  plan->dir = spec.dir;

  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == absl::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  for (const auto& [key, value] : spec.env) env[key] = value;
  for (const auto& [key, value] : env) plan->env_storage.push_back(absl::StrCat(key, "=", value));

  // The command's own PATH decides where its program is found, as with env(1).
  const std::string& program = spec.argv[0];
  if (absl::StrContains(program, '/')) {
    plan->candidates.push_back(program);
  } else {
    auto path = env.find("PATH");
    for (absl::string_view dir :
         absl::StrSplit(path != env.end() ? path->second : kDefaultPath, ':')) {
      plan->candidates.push_back(dir.empty() ? program : absl::StrCat(dir, "/", program));
    }
  }

  for (std::string& arg : plan->argv_storage) plan->argv.push_back(arg.data());
  plan->argv.push_back(nullptr);
  for (std::string& kv : plan->env_storage) plan->envp.push_back(kv.data());
  plan->envp.push_back(nullptr);
  plan->sh_argv.push_back(plan->sh.data());
  plan->sh_argv.push_back(nullptr);
  for (size_t i = 1; i < plan->argv_storage.size(); ++i) {
    plan->sh_argv.push_back(plan->argv_storage[i].data());
  }
  plan->sh_argv.push_back(nullptr);

  struct rlimit limit;
  plan->max_fd = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                     ? static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 1 << 20))
                     : 1 << 16;

  absl::StatusOr<int> oom_score_adj = OomScoreAdj();
  plan->reset_oom_score = oom_score_adj.ok() && *oom_score_adj < 0;
}

[[noreturn]] void ChildFail(int report_fd, int stage, int err) {
  ChildError e{stage, err};
  ssize_t ignored = ::write(report_fd, &e, sizeof e);
  (void)ignored;
  ::_exit(127);
}

// The child between fork and exec: async-signal-safe calls only.
[[noreturn]] void RunChild(ChildPlan& plan, int devnull, int out_w, int err_w, int report_fd,
                           int cgroup_procs) {
  // First, so that a signal to the group reaches the child from the moment SpawnChild returns.
  if (::setpgid(0, 0) != 0) ChildFail(report_fd, kStageSetup, errno);

  // Before anything is allocated, so that the command's cgroup is charged for all of it. "0" is
  // the writer itself.
  if (cgroup_procs >= 0) {
    if (::write(cgroup_procs, "0", 1) != 1) ChildFail(report_fd, kStageCgroup, errno);
    ::close(cgroup_procs);
  }
  if (plan.reset_oom_score) {
    // Raising the value needs no privilege.
    int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) ChildFail(report_fd, kStageOomScore, errno);
    ::close(fd);
  }

  // Move what we keep above 2, so that installing 0-2 cannot overwrite one of them.
  for (int* fd : {&report_fd, &devnull, &out_w, &err_w}) {
    if (*fd >= 3) continue;
    int moved = ::fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (moved < 0) ChildFail(report_fd, kStageSetup, errno);
    *fd = moved;
  }
  if (::dup2(devnull, 0) < 0 || ::dup2(out_w, 1) < 0 || ::dup2(err_w, 2) < 0) {
    ChildFail(report_fd, kStageSetup, errno);
  }
  // No descriptor of the agent leaks into the command. Marking them close-on-exec rather than
  // closing them keeps the report pipe open until exec.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < plan.max_fd; ++fd) {
      if (fd != report_fd) ::close(fd);
    }
  }

  if (!plan.dir.empty() && ::chdir(plan.dir.c_str()) != 0) {
    ChildFail(report_fd, kStageDir, errno);
  }

  // Ignored signals survive exec (a gRPC process ignores SIGPIPE), and so does the signal mask,
  // which SpawnChild blocked around fork.
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  // The PATH search of execvp, over the candidates computed before fork.
  bool saw_eacces = false;
  int last_err = ENOENT;
  for (const std::string& candidate : plan.candidates) {
    ::execve(candidate.c_str(), plan.argv.data(), plan.envp.data());
    int err = errno;
    if (err == ENOEXEC) {
      // Executable but not a binary or a #! script: like execvp, hand it to the shell.
      plan.sh_argv[1] = const_cast<char*>(candidate.c_str());
      ::execve(plan.sh.c_str(), plan.sh_argv.data(), plan.envp.data());
      ChildFail(report_fd, kStageExec, errno);
    }
    switch (err) {
      case EACCES:
        saw_eacces = true;
        [[fallthrough]];
      case ENOENT:
      case ENOTDIR:
      case ESTALE:
      case ENODEV:
      case ETIMEDOUT:
        last_err = err;
        continue;
      default:
        ChildFail(report_fd, kStageExec, err);
    }
  }
  ChildFail(report_fd, kStageExec, saw_eacces ? EACCES : last_err);
}

// Blocks until the child has exec'd (end of file: the report pipe closed on exec) or failed.
// Returns why it failed, or an empty string.
std::string ReadStartError(int report_fd, const RunSpec& spec) {
  ChildError e;
  size_t got = 0;
  while (got < sizeof e) {
    ssize_t n = ::read(report_fd, reinterpret_cast<char*>(&e) + got, sizeof e - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += n;
  }
  if (got < sizeof e) return "";
  std::string prefix = absl::StrCat("cannot run \"", spec.argv[0], "\": ");
  switch (e.stage) {
    case kStageDir:
      return absl::StrCat(prefix, "cannot change to directory \"", spec.dir,
                          "\": ", ::strerror(e.err));
    case kStageExec:
      return absl::StrCat(prefix, ::strerror(e.err));
    case kStageCgroup:
      return absl::StrCat(prefix, "cannot join its memory cgroup ", spec.cgroup->path(), ": ",
                          ::strerror(e.err));
    case kStageOomScore:
      return absl::StrCat(prefix, "cannot reset its OOM score adjustment: ", ::strerror(e.err));
    default:
      return absl::StrCat(prefix, "cannot set up the child process: ", ::strerror(e.err));
  }
}

}  // namespace

void ScopedFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

absl::StatusOr<SpawnedChild> SpawnChild(const RunSpec& spec) {
  ChildPlan plan;
  MakeChildPlan(spec, &plan);

  ScopedFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) return ErrnoStatus("open /dev/null", errno);
  ScopedFd cgroup_procs;
  if (spec.cgroup != nullptr) {
    ASSIGN_OR_RETURN(int fd, spec.cgroup->OpenProcs());
    cgroup_procs.Reset(fd);
  }
  SpawnedChild child;
  ScopedFd out_w, err_w, report_r, report_w;
  RETURN_IF_ERROR(MakePipe(&child.stdout_fd, &out_w));
  RETURN_IF_ERROR(MakePipe(&child.stderr_fd, &err_w));
  RETURN_IF_ERROR(MakePipe(&report_r, &report_w));
  // Only our read ends: the child's write ends stay blocking, so a slow reader slows it down.
  for (int fd : {child.stdout_fd.get(), child.stderr_fd.get()}) {
    if (::fcntl(fd, F_SETFL, O_NONBLOCK) != 0) return ErrnoStatus("fcntl O_NONBLOCK", errno);
  }

  // No signal handler of the agent may run in the child before it resets them.
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  child.start_time = absl::Now();
  child.pid = ::fork();
  if (child.pid == 0) {
    RunChild(plan, devnull.get(), out_w.get(), err_w.get(), report_w.get(), cgroup_procs.get());
  }
  int fork_err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (child.pid < 0) return ErrnoStatus("fork", fork_err);

  // Our copies of the write ends would keep the pipes from ever reaching end of file.
  out_w.Reset();
  err_w.Reset();
  report_w.Reset();
  child.start_error = ReadStartError(report_r.get(), spec);
  return child;
}

}  // namespace kfleet::agent

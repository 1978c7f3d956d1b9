#include "agent/commands/command_manager.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "agent/kernel/kernel_steps.h"
#include "agent/suites/test_runner.h"
#include "common/duration.h"
#include "common/files.h"
#include "common/log.h"
#include "common/memory_size.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

// Feeds a command's output into the outbox, keeping each stream's byte offset. AppendLog blocks
// while the outbox is full, which blocks the reader, which blocks the command's writes: output is
// slowed, never dropped.
class OutboxSink : public OutputSink {
 public:
  OutboxSink(Outbox* outbox, std::string command_id)
      : outbox_(outbox), command_id_(std::move(command_id)) {}

  void Write(v1::LogStream stream, absl::string_view data) override {
    v1::LogChunk chunk;
    chunk.set_command_id(command_id_);
    chunk.set_stream(stream);
    uint64_t& offset = stream == v1::STDERR ? stderr_bytes
                       : stream == v1::KMSG ? kmsg_bytes
                                            : stdout_bytes;
    chunk.set_offset(offset);
    chunk.set_data(std::string(data));
    absl::Status s = outbox_->AppendLog(chunk);
    if (!s.ok()) {
      LogError(absl::StrCat("command ", command_id_, ": output not kept: ", s.ToString()));
      return;
    }
    offset += data.size();
  }

  // Written by the two reader threads and the kernel log's, each its own stream; read after
  // Wait().
  uint64_t stdout_bytes = 0;
  uint64_t stderr_bytes = 0;
  uint64_t kmsg_bytes = 0;

 private:
  Outbox* outbox_;
  std::string command_id_;
};

}  // namespace

CommandManager::CommandManager(CommandBook* book, Outbox* outbox, Options options)
    : book_(book), outbox_(outbox), options_(std::move(options)) {}

CommandManager::~CommandManager() { CancelAll("kfleet-agent is stopping"); }

absl::Status CommandManager::Report(v1::SequencedItem item) {
  absl::StatusOr<uint64_t> seq = outbox_->AppendSequenced(std::move(item));
  if (!seq.ok()) LogError(absl::StrCat("cannot record a command state: ", seq.status().ToString()));
  return seq.status();
}

absl::Status CommandManager::RecoverInterrupted() {
  absl::StatusOr<std::vector<CommandRecord>> records = book_->Unfinished();
  if (!records.ok()) return records.status();
  for (const CommandRecord& r : *records) {
    bool killed = r.pgid > 0 && KillGroupIfSame(r.pgid, r.start_time);
    LogWarning(absl::StrCat("command ", r.command_id,
                            " was interrupted by an agent restart; reporting it lost",
                            killed ? " and killing what is left of it" : ""));
    v1::SequencedItem item;
    v1::CommandFinished* fin = item.mutable_finished();
    fin->set_command_id(r.command_id);
    v1::CommandResult* result = fin->mutable_result();
    result->set_verdict(v1::INFRA_ERROR);
    result->set_lost(true);
    result->set_exit_code(-1);
    result->set_detail(
        "kfleet-agent restarted while the command ran; it was not run again (agent crash or "
        "reboot)");
    if (absl::Status s = Report(std::move(item)); !s.ok()) return s;
    if (absl::Status s = book_->SetFinished(r.command_id); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void CommandManager::OnCommand(const v1::Command& command) {
  absl::Status s = Admit(command, nullptr);
  if (!s.ok() && !absl::IsAlreadyExists(s)) {
    LogError(absl::StrCat("cannot accept command ", command.command_id(), ": ", s.ToString()));
  }
}

absl::Status CommandManager::StartLocal(const v1::Command& command, v1::SequencedItem announce) {
  return Admit(command, &announce);
}

absl::Status CommandManager::Admit(const v1::Command& command, v1::SequencedItem* announce) {
  const std::string& id = command.command_id();
  std::vector<std::thread> ended;
  bool already_running;
  {
    absl::MutexLock lock(&mu_);
    ended.swap(done_threads_);
    already_running = running_.count(id) > 0;
  }
  for (auto& t : ended) t.join();  // threads of commands that finished: about to return
  // Accepted before: never run twice.
  if (already_running || book_->Known(id)) {
    return absl::AlreadyExistsError(absl::StrCat("command ", id, " was accepted before"));
  }
  // Durable acceptance first; only then may anything run. A crash after it reports the command
  // lost at the next start (RecoverInterrupted), so an announced command always ends.
  RETURN_IF_ERROR(book_->Accept(id));
  if (announce != nullptr) {
    if (absl::Status s = Report(std::move(*announce)); !s.ok()) {
      book_->SetFinished(id).IgnoreError();
      return s;
    }
  }
  v1::SequencedItem accepted;
  accepted.mutable_accepted()->set_command_id(id);
  RETURN_IF_ERROR(Report(std::move(accepted)));

  absl::MutexLock lock(&mu_);
  auto& slot = running_[id];
  slot = std::make_unique<Running>();
  slot->thread = std::thread([this, command] { Run(command); });
  return absl::OkStatus();
}

void CommandManager::Run(v1::Command command) {
  const std::string id = command.command_id();
  const v1::Step& step = command.step();
  v1::CommandResult result;
  auto shared_sink = std::make_shared<OutboxSink>(outbox_, id);
  OutboxSink& sink = *shared_sink;
  RunSpec spec;
  spec.kill_grace = options_.kill_grace;
  spec.timeout = kDefaultExecTimeout;
  if (!step.timeout().empty()) {
    if (absl::StatusOr<absl::Duration> d = ParseDuration(step.timeout()); d.ok()) spec.timeout = *d;
  }
  // Its own memory cgroup, with the step's limit; removed when Run returns (after every phase).
  std::unique_ptr<CommandCgroup> cgroup;
  std::string setup_error;
  int64_t memory_max = 0;
  if (!step.memory_max().empty()) {
    absl::StatusOr<uint64_t> bytes = ParseMemorySize(step.memory_max());
    if (bytes.ok()) {
      memory_max = static_cast<int64_t>(*bytes);
    } else {
      setup_error = absl::StrCat("memory_max: ", bytes.status().message());
    }
  }
  if (setup_error.empty() && options_.cgroups != nullptr &&
      options_.cgroups->mode() != CgroupMode::kNone) {
    absl::StatusOr<std::unique_ptr<CommandCgroup>> c = options_.cgroups->Create(id, memory_max);
    if (c.ok()) {
      cgroup = *std::move(c);
    } else {
      LogWarning(absl::StrCat("command ", id, ": no memory cgroup: ", c.status().message()));
    }
  }
  if (setup_error.empty() && memory_max > 0 && cgroup == nullptr) {
    setup_error = absl::StrCat(
        "memory_max ", step.memory_max(), " cannot be applied: this host has no memory cgroup ",
        "kfleet-agent can use (",
        options_.cgroups != nullptr ? options_.cgroups->detail() : "not enabled", ")");
  }
  spec.cgroup = cgroup.get();
  bool runnable = step.has_exec() && !step.exec().argv().empty();
  if (runnable) {
    spec.argv.assign(step.exec().argv().begin(), step.exec().argv().end());
    spec.env.insert(step.exec().env().begin(), step.exec().env().end());
    spec.dir = step.exec().dir().empty() ? options_.work_dir : step.exec().dir();
  }

  std::string cancel_reason;
  bool cancelled_early = false;
  {
    absl::MutexLock lock(&mu_);
    Running& r = *running_[id];
    cancelled_early = r.cancel_before_start;
    cancel_reason = r.cancel_reason;
    r.sink = shared_sink;
  }
  if (!setup_error.empty() && !cancelled_early) {
    result.set_verdict(v1::INFRA_ERROR);
    result.set_exit_code(-1);
    result.set_detail(setup_error);
  } else if (cancelled_early) {
    result.set_verdict(v1::CANCELLED);
    result.set_cancelled(true);
    result.set_exit_code(-1);
    result.set_detail(cancel_reason);
  } else if (step.has_reboot()) {
    result = Reboot(id);
  } else if (step.has_kernel_build() || step.has_kernel_install()) {
    result = RunKernelStep(command, &sink, cgroup.get());
  } else if (step.has_test()) {
    result = RunTestCommand(command, &sink, cgroup.get());
  } else if (!runnable) {
    result.set_verdict(v1::INFRA_ERROR);
    result.set_exit_code(-1);
    result.set_detail("this kfleet-agent does not know the step kind; upgrade the agent");
  } else {
    result = RunPhase(id, std::move(spec), &sink, [&](pid_t pid) {
      v1::SequencedItem started;
      started.mutable_started()->set_command_id(id);
      started.mutable_started()->set_pid(pid);
      Report(std::move(started)).IgnoreError();
    });
  }
  AddOomEvents(id, &result);

  v1::SequencedItem finished;
  v1::CommandFinished* fin = finished.mutable_finished();
  fin->set_command_id(id);
  *fin->mutable_result() = result;
  fin->set_stdout_bytes(sink.stdout_bytes);
  fin->set_stderr_bytes(sink.stderr_bytes);
  if (Report(std::move(finished)).ok()) book_->SetFinished(id).IgnoreError();
  LogInfo(absl::StrCat("command ", id, ": ", v1::Verdict_Name(result.verdict()),
                       result.detail().empty() ? "" : absl::StrCat(" (", result.detail(), ")")));
  if (options_.on_finished) options_.on_finished(id, result);

  absl::MutexLock lock(&mu_);
  auto it = running_.find(id);
  done_threads_.push_back(std::move(it->second->thread));
  running_.erase(it);
  // `cgroup` is removed (killing what is left in it) as Run returns.
}

v1::CommandResult CommandManager::RunPhase(const std::string& id, RunSpec spec, OutputSink* sink,
                                           const std::function<void(pid_t)>& on_started) {
  v1::CommandResult result;
  result.set_exit_code(-1);
  {
    absl::MutexLock lock(&mu_);
    Running& r = *running_[id];
    if (r.cancel_before_start) {
      result.set_verdict(v1::CANCELLED);
      result.set_cancelled(true);
      result.set_detail(r.cancel_reason);
      return result;
    }
  }
  absl::StatusOr<std::unique_ptr<Process>> process = Process::Start(spec, sink);
  if (!process.ok()) {
    result.set_verdict(v1::INFRA_ERROR);
    result.set_detail(absl::StrCat("cannot start the command: ", process.status().message()));
    return result;
  }
  Process* p = process->get();
  {
    absl::MutexLock lock(&mu_);
    running_[id]->pid = p->pid();
  }
  absl::StatusOr<uint64_t> start_time = ProcessStartTime(p->pid());
  book_->SetRunning(id, p->pid(), start_time.ok() ? *start_time : 0).IgnoreError();
  if (on_started) on_started(p->pid());
  {
    absl::MutexLock lock(&mu_);
    Running& r = *running_[id];
    r.process = std::move(*process);
    if (r.cancel_before_start) r.process->Cancel(r.cancel_reason);
  }
  result = p->Wait();
  absl::MutexLock lock(&mu_);
  Running& r = *running_[id];
  // Later phases must not start after a cancel that reached this one.
  if (result.cancelled()) {
    r.cancel_before_start = true;
    r.cancel_reason = result.detail();
  }
  r.process.reset();
  r.pid = 0;
  return result;
}

CommandManager::PhaseRunner CommandManager::StartPhasedStep(const std::string& id,
                                                            absl::Duration default_timeout,
                                                            const std::string& step_timeout,
                                                            CommandCgroup* cgroup) {
  absl::Duration timeout = default_timeout;
  if (!step_timeout.empty()) {
    if (absl::StatusOr<absl::Duration> d = ParseDuration(step_timeout); d.ok()) timeout = *d;
  }
  const absl::Time deadline = absl::Now() + timeout;
  v1::SequencedItem started;
  started.mutable_started()->set_command_id(id);
  Report(std::move(started)).IgnoreError();
  // One deadline for the whole step: each phase gets what is left of it.
  return [this, id, timeout, deadline, cgroup](const RunSpec& phase, OutputSink* sink) {
    RunSpec spec = phase;
    spec.kill_grace = options_.kill_grace;
    spec.timeout = std::max(deadline - absl::Now(), absl::Seconds(1));
    spec.cgroup = cgroup;
    v1::CommandResult r = RunPhase(id, std::move(spec), sink);
    if (r.timed_out()) r.set_detail(absl::StrCat("timed out after ", ShortDuration(timeout)));
    return r;
  };
}

v1::CommandResult CommandManager::RunKernelStep(const v1::Command& command, OutputSink* sink,
                                                CommandCgroup* cgroup) {
  const std::string& id = command.command_id();
  const v1::Step& step = command.step();
  PhaseRunner run_phase = StartPhasedStep(
      id, step.has_kernel_build() ? kDefaultKernelBuildTimeout : kDefaultKernelInstallTimeout,
      step.timeout(), cgroup);

  KernelStepContext ctx;
  ctx.command_id = id;
  ctx.work_dir = options_.kernel_dir;
  ctx.artifacts = options_.artifacts;
  ctx.log = sink;
  ctx.host_name = options_.host_name;
  ctx.run_phase = [&](const RunSpec& phase) { return run_phase(phase, sink); };
  if (ctx.artifacts == nullptr || ctx.work_dir.empty()) {
    v1::CommandResult r;
    r.set_verdict(v1::INFRA_ERROR);
    r.set_exit_code(-1);
    r.set_detail("this kfleet-agent has no artifact store connection for kernel steps");
    return r;
  }
  if (step.has_kernel_install() && !options_.allow_reboot) {
    v1::CommandResult r;
    r.set_verdict(v1::INFRA_ERROR);
    r.set_exit_code(-1);
    r.set_detail(
        "this kfleet-agent was not started with --allow-reboot, so it does not install kernels "
        "on its host");
    return r;
  }
  return step.has_kernel_build() ? RunKernelBuild(step.kernel_build(), ctx)
                                 : RunKernelInstall(step.kernel_install(), ctx);
}

v1::CommandResult CommandManager::RunTestCommand(const v1::Command& command, OutputSink* sink,
                                                 CommandCgroup* cgroup) {
  const std::string& id = command.command_id();
  const v1::Step& step = command.step();
  PhaseRunner run_phase = StartPhasedStep(id, kDefaultTestTimeout, step.timeout(), cgroup);

  const std::string tests_dir =
      options_.tests_dir.empty() ? options_.work_dir + "/tests" : options_.tests_dir;
  TestStepContext ctx;
  ctx.command_id = id;
  ctx.work_dir = absl::StrCat(tests_dir, "/", id);
  ctx.cache_dir = tests_dir + "/cache";
  ctx.log = sink;
  ctx.artifacts = options_.artifacts;
  ctx.run_phase = run_phase;
  ctx.report = [&](const v1::TestResult& result) {
    v1::SequencedItem item;
    item.mutable_test_result()->set_command_id(id);
    *item.mutable_test_result()->mutable_result() = result;
    Report(std::move(item)).IgnoreError();
  };
  v1::CommandResult result = RunTestStep(step.test(), ctx);
  std::error_code ec;
  std::filesystem::remove_all(ctx.work_dir, ec);
  if (ec) {
    LogWarning(absl::StrCat("command ", id, ": cannot remove ", ctx.work_dir, ": ", ec.message()));
  }
  return result;
}

v1::CommandResult CommandManager::Reboot(const std::string& command_id) {
  v1::CommandResult result;
  result.set_exit_code(-1);
  if (!options_.allow_reboot) {
    result.set_verdict(v1::INFRA_ERROR);
    result.set_detail(
        "this kfleet-agent was not started with --allow-reboot, so it does not reboot its host");
    return result;
  }
  v1::SequencedItem started;
  started.mutable_started()->set_command_id(command_id);
  started.mutable_started()->set_pid(0);
  if (!Report(std::move(started)).ok()) {
    result.set_verdict(v1::INFRA_ERROR);
    result.set_detail("cannot record the reboot in the outbox");
    return result;
  }
  // The outbox may not survive the reboot (a guest's state on tmpfs): give the controller a moment
  // to acknowledge that the reboot started.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (outbox_->unacked_bytes() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  // Done as far as this agent goes: after the reboot it must not report the command lost.
  book_->SetFinished(command_id).IgnoreError();
  LogInfo(absl::StrCat("command ", command_id, ": rebooting the host"));
  absl::Status s = options_.reboot ? options_.reboot() : absl::UnimplementedError("no reboot");
  result.set_verdict(v1::INFRA_ERROR);
  result.set_detail(absl::StrCat("reboot failed: ", s.message()));
  return result;
}

void CommandManager::OnCancel(const v1::Cancel& cancel) {
  absl::MutexLock lock(&mu_);
  auto it = running_.find(cancel.command_id());
  if (it == running_.end()) return;
  std::string reason = cancel.reason().empty() ? "cancelled" : cancel.reason();
  if (it->second->process) {
    it->second->process->Cancel(reason);
  } else {
    it->second->cancel_before_start = true;
    it->second->cancel_reason = reason;
  }
}

void CommandManager::CancelAll(const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, r] : running_) {
      if (r->process) {
        r->process->Cancel(reason);
      } else {
        r->cancel_before_start = true;
        r->cancel_reason = reason;
      }
    }
    mu_.Await(absl::Condition(
        +[](decltype(running_)* m) { return m->empty(); }, &running_));
  }
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    threads.swap(done_threads_);
  }
  for (auto& t : threads) t.join();
}

void CommandManager::OnKernelRecord(absl::string_view line) {
  std::vector<std::shared_ptr<OutputSink>> sinks;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, r] : running_) {
      if (r->sink != nullptr) sinks.push_back(r->sink);
    }
  }
  // Outside mu_: a full outbox blocks here, and must not block the session's thread.
  for (const auto& sink : sinks) sink->Write(v1::KMSG, line);
}

namespace {

// ppid and pgid of a process (fields 4 and 5 of /proc/PID/stat, after the parenthesized comm,
// which may hold spaces and parentheses).
bool ReadParentAndGroup(pid_t pid, pid_t* ppid, pid_t* pgid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return false;
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(*stat).substr(close + 1), ' ', absl::SkipEmpty());
  // f[0] state, f[1] ppid, f[2] pgrp
  return f.size() > 2 && absl::SimpleAtoi(f[1], ppid) && absl::SimpleAtoi(f[2], pgid);
}

// The pid a kernel report names: "PID: 123" (WARNING, oops "CPU: 0 PID: 123 Comm: ..."), or the
// one of a hung task / soft lockup ("task comm:123 blocked", "[comm:123]"); 0 if none.
pid_t PidNamedBy(const v1::KernelEvent& e) {
  for (absl::string_view text : {absl::string_view(e.message()), absl::string_view(e.detail())}) {
    size_t at = text.find("PID: ");
    if (at != absl::string_view::npos) {
      absl::string_view rest = text.substr(at + 5);
      size_t end = rest.find_first_not_of("0123456789");
      pid_t pid = 0;
      if (absl::SimpleAtoi(rest.substr(0, end), &pid) && pid > 0) return pid;
    }
  }
  return 0;
}

// True if `pid` is a live process that is neither a kernel thread nor the idle task: a process
// of userspace, which CommandOfPid did not find in a command of ours.
bool IsOtherUserProcess(pid_t pid) {
  if (pid <= 2) return false;  // the idle task (0), init, kthreadd
  pid_t ppid = 0, pgid = 0;
  return ReadParentAndGroup(pid, &ppid, &pgid) && ppid != 2;
}

}  // namespace

std::string CommandManager::CommandOfPid(pid_t pid) {
  for (int depth = 0; pid > 1 && depth < 64; ++depth) {
    pid_t ppid = 0, pgid = 0;
    bool known = ReadParentAndGroup(pid, &ppid, &pgid);
    for (auto& [id, r] : running_) {
      if (r->pid > 0 && (r->pid == pid || (known && r->pid == pgid))) return id;
    }
    if (!known) return "";
    pid = ppid;
  }
  return "";
}

std::string CommandManager::AttributeEvent(const v1::KernelEvent& event) {
  std::string id;
  absl::MutexLock lock(&mu_);
  if (event.has_oom() && options_.cgroups != nullptr) {
    for (const std::string& path : {event.oom().task_memcg(), event.oom().oom_memcg()}) {
      if (path.empty()) continue;
      std::optional<std::string> c = options_.cgroups->CommandIdForCgroupPath(path);
      // The path names a command, but not necessarily ours: another agent on this machine (a
      // controller's local builder beside a host agent) may put its commands under the same
      // parent cgroup. Ours are those this agent accepted, running or ended (the record may be
      // read after the victim's command ended).
      if (c.has_value() && (running_.contains(*c) || book_->Known(*c))) {
        id = *c;
        break;
      }
    }
  }
  const pid_t pid = event.has_oom() ? event.oom().pid() : PidNamedBy(event);
  if (id.empty() && pid > 0) id = CommandOfPid(pid);
  // A report of no process of ours goes to the one command running, a guess for kernel threads
  // (kworker) working for it and for processes gone by now, but never when the report names a
  // live process of someone else: on a machine with two agents it is the other's.
  if (id.empty() && !event.has_oom() && running_.size() == 1 && !IsOtherUserProcess(pid)) {
    id = running_.begin()->first;
  }
  if (event.has_oom() && !id.empty()) {
    auto it = running_.find(id);
    if (it != running_.end()) {
      ++it->second->oom_events;
      it->second->oom_victims.insert(event.oom().pid());
    }
  }
  return id;
}

void CommandManager::AddOomEvents(const std::string& id, v1::CommandResult* result) {
  uint32_t events = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = running_.find(id);
    if (it != running_.end()) events = it->second->oom_events;
  }
  // With a cgroup its counters are the truth; the events only fill in where there is none.
  if (!result->cgroup().empty() || events == 0) return;
  result->set_oom_kills(events);
  if (result->verdict() == v1::FAIL && !result->oom_killed()) {
    result->set_oom_killed(true);
    result->set_detail(absl::StrCat("OOM-killed by the kernel (", events, " OOM kill",
                                    events == 1 ? "" : "s", "); ", result->detail()));
  }
}

int CommandManager::running() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(running_.size());
}

}  // namespace kfleet::agent

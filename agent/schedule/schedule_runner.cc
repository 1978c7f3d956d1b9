#include "agent/schedule/schedule_runner.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/schedule/schedule_spec.h"
#include "agent/schedule/schedule_state.pb.h"
#include "common/duration.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/log.h"

namespace kfleet::agent {
namespace {

// A ScheduleSet is bounded by the session's 4 MiB message limit; the state adds little to it.
constexpr size_t kMaxStateBytes = 16 << 20;

int64_t UnixMsOrZero(absl::Time t) { return t == absl::InfinitePast() ? 0 : absl::ToUnixMillis(t); }

absl::Time TimeOrPast(int64_t unix_ms) {
  return unix_ms == 0 ? absl::InfinitePast() : absl::FromUnixMillis(unix_ms);
}

}  // namespace

ScheduleRunner::ScheduleRunner(ScheduleRunnerOptions options, const Clock* clock,
                               RunLauncher* launcher)
    : options_(std::move(options)), clock_(clock), launcher_(launcher) {
  if (!options_.new_command_id) options_.new_command_id = [] { return NewId("c-"); };
}

std::unique_ptr<ScheduleRunner> ScheduleRunner::Open(ScheduleRunnerOptions options,
                                                     const Clock* clock, RunLauncher* launcher) {
  std::unique_ptr<ScheduleRunner> runner(new ScheduleRunner(std::move(options), clock, launcher));
  absl::MutexLock lock(&runner->mu_);
  runner->Load();
  return runner;
}

ScheduleRunner::~ScheduleRunner() { Stop(); }

void ScheduleRunner::Load() {
  if (options_.state_path.empty()) return;
  const std::string& path = options_.state_path;
  absl::StatusOr<std::string> data = ReadFile(path, kMaxStateBytes);
  if (absl::IsNotFound(data.status())) return;
  state::ScheduleState st;
  if (!data.ok() || !st.ParseFromString(*data)) {
    std::string why = data.ok() ? "not a schedule state" : std::string(data.status().message());
    LogWarning(absl::StrCat("schedules: cannot read ", path, " (", why, "); set aside as ", path,
                            ".bad, starting without schedules until the controller sends them"));
    std::rename(path.c_str(), (path + ".bad").c_str());
    return;
  }
  const absl::Time now = clock_->Now();
  for (const v1::ScheduleSpec& spec : st.set().schedules()) {
    // Limits may have changed since the file was written.
    if (absl::Status s = ValidateScheduleSpec(spec); !s.ok()) {
      LogWarning(absl::StrCat("schedules: ", path, ": refused: ", s.message()));
      continue;
    }
    if (static_cast<int>(entries_.size()) >= kMaxSchedules) break;
    Entry& e = entries_[spec.name()];
    e.spec = spec;
    e.first_seen = now;
    e.delay = DrawDelay(spec.jitter_ms());
  }
  bool ended = false;
  for (const state::ScheduleRuns& r : st.runs()) {
    if (!IsValidId(r.name())) continue;
    auto it = entries_.find(r.name());
    if (it == entries_.end()) {
      if (r.last_end_unix_ms() == 0 && r.running_command_id().empty()) continue;
      it = entries_.emplace(r.name(), Entry{}).first;
    }
    Entry& e = it->second;
    if (r.first_seen_unix_ms() != 0) e.first_seen = absl::FromUnixMillis(r.first_seen_unix_ms());
    e.last_end = TimeOrPast(r.last_end_unix_ms());
    // A delay drawn for a larger jitter than the spec's now is drawn again.
    if (e.spec && r.jitter_delay_ms() < std::max<uint64_t>(e.spec->jitter_ms(), 1)) {
      e.delay = absl::Milliseconds(r.jitter_delay_ms());
    }
    if (!r.running_command_id().empty()) {
      // The agent stopped during this run: CommandManager::RecoverInterrupted reported its command
      // (lost) if it had started; the schedule goes on from now.
      LogWarning(absl::StrCat("schedule ", r.name(), ": run ", r.running_command_id(),
                              " was in flight when kfleet-agent stopped; it counts as ended now"));
      e.last_end = now;
      if (e.spec) e.delay = DrawDelay(e.spec->jitter_ms());
      ended = true;
    }
  }
  TrimRemovedLocked();
  if (ended) PersistLocked();
  int loaded = 0;
  for (const auto& [name, e] : entries_) loaded += e.spec.has_value() ? 1 : 0;
  LogInfo(absl::StrCat("schedules: ", loaded, " loaded from ", path));
}

void ScheduleRunner::PersistLocked() {
  if (options_.state_path.empty()) return;
  state::ScheduleState st;
  for (const auto& [name, e] : entries_) {
    if (e.spec) *st.mutable_set()->add_schedules() = *e.spec;
    state::ScheduleRuns* r = st.add_runs();
    r->set_name(name);
    r->set_first_seen_unix_ms(UnixMsOrZero(e.first_seen));
    r->set_last_end_unix_ms(UnixMsOrZero(e.last_end));
    r->set_jitter_delay_ms(absl::ToInt64Milliseconds(e.delay));
    r->set_running_command_id(e.running);
    if (!e.running.empty()) r->set_running_since_unix_ms(absl::ToUnixMillis(e.running_since));
  }
  // Not fatal: the schedules go on in memory, and the controller sends them again on connect.
  if (absl::Status s = WriteFileAtomic(options_.state_path, st.SerializeAsString()); !s.ok()) {
    LogError(absl::StrCat("schedules: cannot write ", options_.state_path, ": ", s.message()));
  }
}

absl::Duration ScheduleRunner::DrawDelay(uint64_t jitter_ms) {
  if (jitter_ms == 0) return absl::ZeroDuration();
  uint64_t ms =
      options_.random ? options_.random(jitter_ms) : absl::Uniform<uint64_t>(gen_, 0, jitter_ms);
  return absl::Milliseconds(std::min(ms, jitter_ms - 1));
}

absl::Time ScheduleRunner::DueOf(Entry& e, absl::Time now) {
  if (!e.spec || e.spec->paused() || !e.running.empty()) return absl::InfiniteFuture();
  // A clock stepped back must not stall a schedule until it catches up again.
  if (e.last_end != absl::InfinitePast() && e.last_end > now) e.last_end = now;
  if (e.first_seen > now) e.first_seen = now;
  absl::Time base = e.last_end == absl::InfinitePast()
                        ? e.first_seen
                        : e.last_end + absl::Milliseconds(e.spec->every_after_ms());
  return base + e.delay;
}

void ScheduleRunner::TrimRemovedLocked() {
  std::vector<std::pair<absl::Time, std::string>> removed;
  for (const auto& [name, e] : entries_) {
    if (!e.spec && e.running.empty()) removed.emplace_back(e.last_end, name);
  }
  if (static_cast<int>(removed.size()) <= kMaxSchedules) return;
  std::sort(removed.begin(), removed.end());
  for (size_t i = 0; i + kMaxSchedules < removed.size(); ++i) entries_.erase(removed[i].second);
}

absl::Status ScheduleRunner::SetSchedules(const v1::ScheduleSet& set) {
  std::vector<std::string> refused;
  std::map<std::string, const v1::ScheduleSpec*> accepted;
  for (const v1::ScheduleSpec& spec : set.schedules()) {
    if (absl::Status s = ValidateScheduleSpec(spec); !s.ok()) {
      refused.emplace_back(s.message());
    } else if (accepted.count(spec.name()) > 0) {
      refused.push_back(absl::StrCat("schedule ", spec.name(), " is given twice; the first kept"));
    } else if (static_cast<int>(accepted.size()) >= kMaxSchedules) {
      refused.push_back(absl::StrCat("schedule ", spec.name(), ": this host already has ",
                                     kMaxSchedules, " schedules, the most it runs"));
    } else {
      accepted[spec.name()] = &spec;
    }
  }
  for (const std::string& r : refused) LogWarning(absl::StrCat("schedules: refused: ", r));

  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  for (auto& [name, e] : entries_) {
    if (!e.spec || accepted.count(name) > 0) continue;
    LogInfo(
        absl::StrCat("schedule ", name, " removed",
                     e.running.empty() ? "" : "; its run " + e.running + " goes on to its end"));
    e.spec.reset();
  }
  for (const auto& [name, spec] : accepted) {
    auto [it, added] = entries_.try_emplace(name);
    Entry& e = it->second;
    if (added || (!e.spec && e.last_end == absl::InfinitePast())) e.first_seen = now;
    bool redraw = !e.spec || e.spec->jitter_ms() != spec->jitter_ms();
    if (!e.spec || e.spec->revision() != spec->revision()) {
      LogInfo(absl::StrCat("schedule ", name, !e.spec ? " added" : " changed", " (revision ",
                           spec->revision(), ", every ",
                           ShortDuration(absl::Milliseconds(spec->every_after_ms())),
                           " after the last run", spec->paused() ? ", paused" : "", ")"));
    }
    e.spec = *spec;
    if (redraw) e.delay = DrawDelay(spec->jitter_ms());
  }
  TrimRemovedLocked();
  PersistLocked();
  changed_ = true;
  if (refused.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(refused, "; "));
}

bool ScheduleRunner::OnRunFinished(const std::string& command_id, absl::Time end) {
  if (command_id.empty()) return false;
  absl::MutexLock lock(&mu_);
  for (auto& [name, e] : entries_) {
    if (e.running != command_id) continue;
    e.running.clear();
    e.last_end = end;
    e.delay = e.spec ? DrawDelay(e.spec->jitter_ms()) : absl::ZeroDuration();
    PersistLocked();
    changed_ = true;
    return true;
  }
  return false;
}

absl::Time ScheduleRunner::RunDue() {
  struct Launch {
    v1::ScheduleSpec spec;
    v1::ScheduleRunStarted run;
  };
  std::vector<Launch> launches;
  absl::Time next = absl::InfiniteFuture();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::InfiniteFuture();
    const absl::Time now = clock_->Now();
    for (auto& [name, e] : entries_) {
      absl::Time due = DueOf(e, now);
      if (due > now) {
        next = std::min(next, due);
        continue;
      }
      // Marked running (and kept so) before the launch: a crash from here on counts it as ended
      // at the next start, and OnRunFinished may arrive before Launch returns.
      e.running = options_.new_command_id();
      e.running_since = now;
      Launch& l = launches.emplace_back();
      l.spec = *e.spec;
      v1::ScheduleRunStarted& run = l.run;
      run.set_schedule(name);
      run.set_command_id(e.running);
      *run.mutable_argv() = e.spec->argv();
      run.set_revision(e.spec->revision());
      run.set_due_unix_ms(absl::ToUnixMillis(due));
      run.set_previous_end_unix_ms(UnixMsOrZero(e.last_end));
      run.set_timeout_ms(e.spec->timeout_ms());
      run.set_memory_max_bytes(e.spec->memory_max_bytes());
    }
    if (!launches.empty()) PersistLocked();
  }
  for (const Launch& l : launches) {
    absl::Status s = launcher_->Launch(l.spec, l.run);
    if (s.ok()) continue;
    // No command exists: the run ends here, and the schedule keeps its spacing from now.
    LogError(absl::StrCat("schedule ", l.run.schedule(), ": run ", l.run.command_id(),
                          " could not start: ", s.message(), "; next try after every_after"));
    OnRunFinished(l.run.command_id(), clock_->Now());
  }
  return next;
}

void ScheduleRunner::Loop() {
  while (true) {
    const absl::Time next = RunDue();
    absl::MutexLock lock(&mu_);
    if (!WokenLocked()) {
      mu_.AwaitWithTimeout(absl::Condition(this, &ScheduleRunner::WokenLocked),
                           next - clock_->Now());
    }
    if (stopping_) return;
    changed_ = false;
  }
}

void ScheduleRunner::Start() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void ScheduleRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<ScheduleStatus> ScheduleRunner::Snapshot() const {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  std::vector<ScheduleStatus> out;
  for (const auto& [name, e] : entries_) {
    ScheduleStatus& s = out.emplace_back();
    s.name = name;
    s.active = e.spec.has_value();
    s.paused = e.spec && e.spec->paused();
    s.revision = e.spec ? e.spec->revision() : 0;
    Entry copy = e;  // DueOf clamps times stepped back; a snapshot changes nothing
    s.due = DueOf(copy, now);
    s.last_end = e.last_end;
    s.running = e.running;
  }
  return out;
}

}  // namespace kfleet::agent

#include "agent/units/unit_tracker.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace kfleet::agent {
namespace {

constexpr size_t kRecentKills = 16;

bool Running(absl::string_view state) {
  return state == "active" || state == "activating" || state == "deactivating" ||
         state == "reloading";
}

v1::MetricSample Sample(absl::string_view name, const std::string& unit, double value) {
  v1::MetricSample s;
  s.set_name(std::string(name));
  (*s.mutable_labels())["unit"] = unit;
  s.set_value(value);
  return s;
}

// The seconds of a CLOCK_REALTIME microsecond stamp.
double Seconds(uint64_t us) { return static_cast<double>(us) / 1e6; }

}  // namespace

absl::string_view NormalizeUnitResult(absl::string_view result) {
  static constexpr absl::string_view kKnown[] = {
      "success",  "exit-code",       "signal",    "core-dump", "oom-kill",      "timeout",
      "watchdog", "start-limit-hit", "resources", "protocol",  "exec-condition"};
  for (absl::string_view k : kKnown) {
    if (result == k) return k;
  }
  return "other";
}

v1::KernelEvent UnitFailedEvent(const UnitRun& run) {
  v1::KernelEvent e;
  e.set_kind("unit_failed");
  e.set_unit(run.unit);
  e.set_time_unix_ms(static_cast<int64_t>(run.ended_us / 1000));
  std::string message = absl::StrCat(run.unit, " failed: ", run.result);
  if (run.result == "exit-code") absl::StrAppend(&message, " (status ", run.exec_status, ")");
  if (run.result == "signal" || run.result == "core-dump") {
    absl::StrAppend(&message, " (signal ", run.exec_status, ")");
  }
  if (run.oom_kills > 0) {
    absl::StrAppend(&message, " (", run.oom_kills, " OOM kill", run.oom_kills == 1 ? "" : "s", ")");
  }
  if (run.started_us > 0 && run.ended_us >= run.started_us) {
    absl::StrAppend(&message,
                    absl::StrFormat(" after %.1fs", Seconds(run.ended_us - run.started_us)));
  }
  if (run.peak_memory_bytes > 0) {
    absl::StrAppend(&message,
                    absl::StrFormat(", memory peak %.1f MiB",
                                    static_cast<double>(run.peak_memory_bytes) / (1 << 20)));
  }
  e.set_message(std::move(message));
  return e;
}

bool UnitTracker::Observe(const UnitSnapshot& snapshot) {
  absl::MutexLock lock(&mu_);
  auto it = units_.find(snapshot.name);
  if (it == units_.end()) {
    if (units_.size() >= max_units_) return false;
    Unit& u = units_[snapshot.name];
    u.last = snapshot;
    // History: what systemd remembers of the last run shows in the gauges, uncounted.
    if (snapshot.exec_exit_us > 0 && snapshot.exec_exit_us >= snapshot.exec_start_us) {
      u.last_run = UnitRun{.unit = snapshot.name,
                           .result = std::string(NormalizeUnitResult(snapshot.result)),
                           .exec_status = snapshot.exec_status,
                           .started_us = snapshot.exec_start_us,
                           .ended_us = snapshot.exec_exit_us};
    }
    return true;
  }
  Unit& u = it->second;
  const bool ended = snapshot.exec_exit_us != 0 && snapshot.exec_exit_us != u.last.exec_exit_us &&
                     snapshot.exec_exit_us >= snapshot.exec_start_us;
  u.last = snapshot;
  if (ended) {
    pending_.push_back(UnitRun{.unit = snapshot.name,
                               .result = std::string(NormalizeUnitResult(snapshot.result)),
                               .exec_status = snapshot.exec_status,
                               .started_us = snapshot.exec_start_us,
                               .ended_us = snapshot.exec_exit_us,
                               .peak_memory_bytes = u.run_peak_bytes});
    u.run_peak_bytes = 0;
  }
  return true;
}

void UnitTracker::ObserveMemory(absl::string_view unit, uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  auto it = units_.find(unit);
  if (it == units_.end()) return;
  it->second.run_peak_bytes = std::max(it->second.run_peak_bytes, bytes);
}

std::string UnitTracker::AttributeOomKill(absl::string_view cgroup_path, uint64_t time_us,
                                          uint64_t victim_bytes) {
  if (cgroup_path.empty()) return "";
  absl::MutexLock lock(&mu_);
  for (auto& [name, u] : units_) {
    const std::string& cg = u.last.cgroup;
    bool inside =
        !cg.empty() &&
        (cgroup_path == cg || (absl::StartsWith(cgroup_path, cg) && cgroup_path[cg.size()] == '/'));
    // The unit may have ended (and lost its ControlGroup) by the time systemd was asked: its
    // cgroup is the directory named after it.
    if (!inside) {
      for (absl::string_view part : absl::StrSplit(cgroup_path, '/')) inside |= part == name;
    }
    if (!inside) continue;
    ++u.oom_kills;
    u.recent_kills.emplace_back(time_us, victim_bytes);
    if (u.recent_kills.size() > kRecentKills) u.recent_kills.erase(u.recent_kills.begin());
    return name;
  }
  return "";
}

std::vector<UnitRun> UnitTracker::TakeSettledRuns(uint64_t now_us) {
  absl::MutexLock lock(&mu_);
  std::vector<UnitRun> settled;
  auto keep = pending_.begin();
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->ended_us + kSettleUs > now_us) {
      if (keep != it) *keep = std::move(*it);
      ++keep;
      continue;
    }
    UnitRun run = std::move(*it);
    auto u = units_.find(run.unit);
    if (u != units_.end()) {
      // The kernel's report comes a little before systemd sees the death, and its time is the
      // kernel's: a second's slack either side.
      for (const auto& [t, victim_bytes] : u->second.recent_kills) {
        if (t + 1'000'000 >= run.started_us && t <= run.ended_us + 1'000'000) {
          ++run.oom_kills;
          run.peak_memory_bytes = std::max(run.peak_memory_bytes, victim_bytes);
        }
      }
      if (run.oom_kills > 0) run.result = "oom-kill";
      ++u->second.runs_by_result[run.result];
      u->second.last_run = run;
    }
    settled.push_back(std::move(run));
  }
  pending_.erase(keep, pending_.end());
  return settled;
}

std::optional<uint64_t> UnitTracker::NextSettleUs() const {
  absl::MutexLock lock(&mu_);
  std::optional<uint64_t> next;
  for (const UnitRun& run : pending_) {
    uint64_t at = run.ended_us + kSettleUs;
    if (!next.has_value() || at < *next) next = at;
  }
  return next;
}

bool UnitTracker::Watches(absl::string_view unit) const {
  absl::MutexLock lock(&mu_);
  return units_.find(unit) != units_.end();
}

size_t UnitTracker::size() const {
  absl::MutexLock lock(&mu_);
  return units_.size();
}

std::map<std::string, std::string> UnitTracker::RunningCgroups() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, std::string> out;
  for (const auto& [name, u] : units_) {
    if (Running(u.last.active_state) && !u.last.cgroup.empty()) out[name] = u.last.cgroup;
  }
  return out;
}

std::vector<v1::MetricSample> UnitTracker::Samples() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::MetricSample> out;
  for (const auto& [name, u] : units_) {
    out.push_back(Sample("kfleet_unit_active", name, Running(u.last.active_state) ? 1 : 0));
    out.push_back(Sample("kfleet_unit_oom_kills_total", name, static_cast<double>(u.oom_kills)));
    // The usual results exist from the start at 0, so that increase() sees a unit's first run
    // of each; others appear when they happen.
    std::map<std::string, uint64_t> runs = u.runs_by_result;
    for (const char* usual : {"success", "exit-code", "signal", "oom-kill", "timeout"}) {
      runs.emplace(usual, 0);
    }
    for (const auto& [result, n] : runs) {
      v1::MetricSample s = Sample("kfleet_unit_runs_total", name, static_cast<double>(n));
      (*s.mutable_labels())["result"] = result;
      out.push_back(std::move(s));
    }
    if (u.last_run.has_value()) {
      const UnitRun& r = *u.last_run;
      v1::MetricSample s = Sample("kfleet_unit_last_result", name, 1);
      (*s.mutable_labels())["result"] = r.result;
      out.push_back(std::move(s));
      out.push_back(Sample("kfleet_unit_last_run_timestamp_seconds", name, Seconds(r.ended_us)));
      if (r.started_us > 0 && r.ended_us >= r.started_us) {
        out.push_back(
            Sample("kfleet_unit_last_duration_seconds", name, Seconds(r.ended_us - r.started_us)));
      }
      if (r.peak_memory_bytes > 0) {
        out.push_back(Sample("kfleet_unit_last_peak_memory_bytes", name,
                             static_cast<double>(r.peak_memory_bytes)));
      }
    }
    if (u.last.timer_last_trigger_us > 0) {
      out.push_back(Sample("kfleet_unit_timer_last_trigger_timestamp_seconds", name,
                           Seconds(u.last.timer_last_trigger_us)));
    }
    if (u.last.timer_interval_us > 0) {
      out.push_back(
          Sample("kfleet_unit_timer_interval_seconds", name, Seconds(u.last.timer_interval_us)));
    }
  }
  return out;
}

}  // namespace kfleet::agent

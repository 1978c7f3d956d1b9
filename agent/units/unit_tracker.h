// What the agent knows of the systemd units it watches (--watch-units), fed with what systemd
// says of each (UnitSnapshot, read over D-Bus by UnitWatcher) and with the OOM kills the kernel
// reports: each unit's runs, their results, durations and memory peaks, its OOM kills and its
// timer. Plain code, no D-Bus: the tests feed it snapshots. Thread-safe.
#ifndef KFLEET_AGENT_UNITS_UNIT_TRACKER_H_
#define KFLEET_AGENT_UNITS_UNIT_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "agent/units/unit_patterns.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

// A service as systemd describes it (org.freedesktop.systemd1.Unit, .Service and the .Timer that
// triggers it). Times are CLOCK_REALTIME microseconds, 0 when systemd has none.
struct UnitSnapshot {
  std::string name;            // e.g. "mbsync@work.service"
  std::string active_state;    // active, activating, deactivating, reloading, inactive, failed
  std::string result;          // Service.Result of the last run: success, exit-code, oom-kill...
  uint64_t exec_start_us = 0;  // ExecMainStartTimestamp
  uint64_t exec_exit_us = 0;   // ExecMainExitTimestamp
  int32_t exec_status = 0;     // ExecMainStatus: the exit status, or the signal that killed it
  std::string cgroup;          // ControlGroup, e.g. /system.slice/system-mbsync.slice/...
  std::string timer;           // the timer that triggers it (TriggeredBy), "" if none
  uint64_t timer_last_trigger_us = 0;  // Timer.LastTriggerUSec
  uint64_t timer_interval_us = 0;      // the timer's OnUnitInactiveSec (or OnUnitActiveSec...)
};

// One run of a watched unit that ended.
struct UnitRun {
  std::string unit;
  std::string result;  // systemd's word; "oom-kill" when the kernel OOM-killed a process of it
  int32_t exec_status = 0;
  uint64_t started_us = 0;
  uint64_t ended_us = 0;
  uint64_t peak_memory_bytes = 0;  // the highest memory.peak seen during the run; 0 unknown
  uint32_t oom_kills = 0;
  bool failed() const { return result != "success"; }
};

// The event a failed run makes (kind unit_failed), e.g. "mbsync@small.service failed: oom-kill
// (1 OOM kill) after 1.2s, memory peak 32 MiB".
kfleet::v1::KernelEvent UnitFailedEvent(const UnitRun& run);

class UnitTracker {
 public:
  explicit UnitTracker(size_t max_units = kMaxWatchedUnits) : max_units_(max_units) {}

  // How long an ended run waits before it is counted and reported: systemd may see the main
  // process die (SIGKILL) before the agent reads the kernel's OOM report of the same kill.
  static constexpr uint64_t kSettleUs = 1'500'000;

  // Takes systemd's latest word on a unit. The first snapshot of a unit is its history (the last
  // run's result and times become the gauges, but are not counted as a run); later, a new
  // ExecMainExitTimestamp (after ExecMainStartTimestamp) is a run that ended: it settles for
  // kSettleUs, then TakeSettledRuns returns it. False when the unit is new and max_units are
  // watched already (it is then left out).
  bool Observe(const UnitSnapshot& snapshot);
  // A memory.peak (or memory.current) reading of a running unit's cgroup.
  void ObserveMemory(absl::string_view unit, uint64_t bytes);
  // The watched unit whose cgroup holds `cgroup_path` (a memcg path from an OOM report), or "".
  // The kill, at `time_us` (CLOCK_REALTIME), is counted to the unit and to the run it fell in;
  // the victim's RSS (`victim_bytes`) is a floor of that run's memory peak, which a run killed
  // between two memory readings would otherwise miss.
  std::string AttributeOomKill(absl::string_view cgroup_path, uint64_t time_us,
                               uint64_t victim_bytes = 0);
  // The runs that ended at least kSettleUs before `now_us`, oldest first: counted now, with
  // result "oom-kill" when an OOM kill fell in the run (systemd may say "signal").
  std::vector<UnitRun> TakeSettledRuns(uint64_t now_us);
  // When the next pending run settles, if one is pending.
  std::optional<uint64_t> NextSettleUs() const;

  bool Watches(absl::string_view unit) const;
  size_t size() const;
  // Running units with their cgroups, for memory readings.
  std::map<std::string, std::string> RunningCgroups() const;

  // The kfleet_unit_* samples, one set per unit (labels: unit, and result where it applies).
  std::vector<kfleet::v1::MetricSample> Samples() const;

 private:
  struct Unit {
    UnitSnapshot last;
    // The memory peak of the run in progress so far.
    uint64_t run_peak_bytes = 0;
    // The last run that ended and settled (or, before any, the one systemd told of first).
    std::optional<UnitRun> last_run;
    std::map<std::string, uint64_t> runs_by_result;
    uint64_t oom_kills = 0;
    // The last few kills (time, victim's RSS), to place them in runs.
    std::vector<std::pair<uint64_t, uint64_t>> recent_kills;
  };

  const size_t max_units_;
  mutable absl::Mutex mu_;
  std::map<std::string, Unit, std::less<>> units_ ABSL_GUARDED_BY(mu_);
  std::vector<UnitRun> pending_ ABSL_GUARDED_BY(mu_);  // ended, not yet settled
};

// systemd's Service.Result words kfleet keeps as label values; any other is "other", so that the
// result label stays bounded.
absl::string_view NormalizeUnitResult(absl::string_view result);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_UNITS_UNIT_TRACKER_H_

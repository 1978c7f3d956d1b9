// Follows the systemd units the agent watches (--watch-units) over D-Bus (sd-bus): systemd's
// private socket when root, as systemctl does, else the system bus. Subscribed to systemd's
// signals, it reads a unit again when its properties (or its timer's) change, picks up units
// loaded later that match, reads the memory.peak of running units' cgroups every
// `memory_interval` (only while one runs), and hands each ended run to the hooks once it settled
// (UnitTracker). Idle between changes: no polling while no watched unit runs.
#ifndef KFLEET_AGENT_UNITS_UNIT_WATCHER_H_
#define KFLEET_AGENT_UNITS_UNIT_WATCHER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/units/unit_tracker.h"

namespace kfleet::agent {

struct UnitWatcherOptions {
  std::vector<std::string> patterns;  // ParseUnitPatterns
  // systemd runs as PID 1 if this exists (what sd_booted(3) tests).
  std::string systemd_run_dir = "/run/systemd/system";
  std::string cgroup_root = "/sys/fs/cgroup";
  absl::Duration memory_interval = absl::Milliseconds(250);
};

struct UnitWatcherHooks {
  // Each run of a watched unit that ended and settled, failed or not. On the watcher's thread.
  std::function<void(const UnitRun&)> on_run;
  // Warnings (a pattern that matches nothing yet, a lost connection). On any thread.
  std::function<void(const std::string&)> warn;
};

class UnitWatcher {
 public:
  // Connects, subscribes, lists the units the patterns match (a warning per pattern that matches
  // none: systemd may load one later) and starts following them on a thread of its own.
  // FailedPrecondition when the host does not run systemd; Unavailable when systemd cannot be
  // reached. Each error says what to do.
  static absl::StatusOr<std::unique_ptr<UnitWatcher>> Start(UnitWatcherOptions options,
                                                            UnitTracker* tracker,
                                                            UnitWatcherHooks hooks);
  // The FailedPrecondition error Start returns on a host that does not run systemd, or OK; to
  // refuse the flag before anything else starts.
  static absl::Status CheckHost(const UnitWatcherOptions& options);

  ~UnitWatcher();  // Stop()s

  // Stops following and joins the thread. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit UnitWatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_UNITS_UNIT_WATCHER_H_

// The metrics of schedules' runs on the controller's /metrics (docs/metrics.md, "Schedules"),
// read from the store at each scrape: they survive a controller restart, and the counters go on
// counting runs whose records were pruned.
#ifndef KFLEET_CONTROLLER_SCHEDULE_METRICS_H_
#define KFLEET_CONTROLLER_SCHEDULE_METRICS_H_

#include <vector>

#include "controller/store/schedule_store.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace kfleet::controller {

// Per (live schedule, host that ran it), labels `host` and `schedule`:
//   kfleet_schedule_runs_total{result="pass|fail|oom|timeout"}   counter (cancelled runs: fail)
//   kfleet_schedule_oom_kills_total                                counter
//   kfleet_schedule_last_run_timestamp_seconds                     gauge, when the last run ended
//   kfleet_schedule_last_duration_seconds                          gauge
//   kfleet_schedule_last_peak_memory_bytes                         gauge, its cgroup's peak
// The gauges appear once a run has ended. Collect() is thread-safe; `store` outlives this.
class ScheduleCollector : public prometheus::Collectable {
 public:
  explicit ScheduleCollector(ScheduleStore* store) : store_(store) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

  // The families for `stats` (Collect's, without the store).
  static std::vector<prometheus::MetricFamily> Families(const std::vector<ScheduleRunStats>& stats);

 private:
  ScheduleStore* const store_;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_SCHEDULE_METRICS_H_

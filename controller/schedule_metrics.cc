#include "controller/schedule_metrics.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "prometheus/client_metric.h"

namespace kfleet::controller {
namespace {

prometheus::ClientMetric Series(const ScheduleRunStats& s, double value,
                                const char* result = nullptr) {
  prometheus::ClientMetric m;
  m.label.push_back({"host", s.host_name});
  if (result != nullptr) m.label.push_back({"result", result});
  m.label.push_back({"schedule", s.schedule});
  m.counter.value = value;
  m.gauge.value = value;
  return m;
}

}  // namespace

std::vector<prometheus::MetricFamily> ScheduleCollector::Families(
    const std::vector<ScheduleRunStats>& stats) {
  prometheus::MetricFamily runs{"kfleet_schedule_runs_total",
                                "Runs of the schedule on the host that ended, by result: pass, "
                                "fail (cancelled runs too), oom (OOM-killed), timeout",
                                prometheus::MetricType::Counter,
                                {}};
  prometheus::MetricFamily ooms{
      "kfleet_schedule_oom_kills_total",
      "Kernel OOM kills in the cgroups of the schedule's runs on the host",
      prometheus::MetricType::Counter,
      {}};
  prometheus::MetricFamily last{"kfleet_schedule_last_run_timestamp_seconds",
                                "When the schedule's last run on the host ended, Unix seconds "
                                "(the host's clock)",
                                prometheus::MetricType::Gauge,
                                {}};
  prometheus::MetricFamily duration{"kfleet_schedule_last_duration_seconds",
                                    "Wall time of the schedule's last run on the host",
                                    prometheus::MetricType::Gauge,
                                    {}};
  prometheus::MetricFamily peak{"kfleet_schedule_last_peak_memory_bytes",
                                "Peak memory of the cgroup of the schedule's last run on the host "
                                "(0: unknown)",
                                prometheus::MetricType::Gauge,
                                {}};
  for (const ScheduleRunStats& s : stats) {
    runs.metric.push_back(Series(s, static_cast<double>(s.fail), "fail"));
    runs.metric.push_back(Series(s, static_cast<double>(s.oom), "oom"));
    runs.metric.push_back(Series(s, static_cast<double>(s.pass), "pass"));
    runs.metric.push_back(Series(s, static_cast<double>(s.timeout), "timeout"));
    ooms.metric.push_back(Series(s, static_cast<double>(s.oom_kills)));
    if (s.last_end_ms == 0) continue;
    last.metric.push_back(Series(s, static_cast<double>(s.last_end_ms) / 1000));
    duration.metric.push_back(Series(s, static_cast<double>(s.last_duration_ms) / 1000));
    peak.metric.push_back(Series(s, static_cast<double>(s.last_peak_bytes)));
  }
  std::vector<prometheus::MetricFamily> out;
  for (prometheus::MetricFamily* f : {&duration, &peak, &last, &ooms, &runs}) {
    if (!f->metric.empty()) out.push_back(std::move(*f));
  }
  return out;
}

std::vector<prometheus::MetricFamily> ScheduleCollector::Collect() const {
  absl::StatusOr<std::vector<ScheduleRunStats>> stats = store_->ListScheduleRunStats();
  if (!stats.ok()) {
    LogWarning(absl::StrCat("metrics: schedules: ", stats.status().ToString()));
    return {};
  }
  return Families(*stats);
}

}  // namespace kfleet::controller

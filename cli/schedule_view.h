// Schedules and their runs as kctl prints them for people (`kctl schedule ...`).
#ifndef KFLEET_CLI_SCHEDULE_VIEW_H_
#define KFLEET_CLI_SCHEDULE_VIEW_H_

#include <string>

#include "absl/time/time.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

// Which hosts: "mail", "mail,relay", or "pool=local,role=guest" (labels).
std::string DescribeScheduleHosts(const v1::Schedule& schedule);

// "every 5m after a run ends, jitter 30s, timeout 10m, memory max 200 MiB".
std::string DescribeScheduleTiming(const v1::Schedule& schedule);

// "pass", "fail", "oom", "timeout", "cancelled", "running" (the run's outcome) with what it says:
// "pass (exit 0, 1.2s, peak 12 MiB)", "oom (OOM-killed ..., 0.3s)", "running (since 5s)".
std::string DescribeRun(const v1::ScheduleRun& run, absl::Time now);

// What `kctl schedule add` prints: what was stored and which hosts run it now.
std::string RenderScheduleAdded(const v1::Schedule& schedule);

// NAME HOSTS EVERY-AFTER STATE LAST-RUN RESULT COMMAND; `wide` adds JITTER TIMEOUT MEMORY-MAX
// REVISION.
std::string RenderSchedulesTable(const v1::ListSchedulesResponse& schedules, bool wide,
                                 absl::Time now);

// `kctl schedule show`: the schedule's fields, then one row per host: HOST STATE RUNS LAST-RUN
// COMMAND-ID RESULT (DescribeRun).
std::string RenderScheduleDetail(const v1::Schedule& schedule, absl::Time now, absl::TimeZone tz);

// `kctl schedule runs`: STARTED HOST COMMAND-ID RESULT, RESULT as DescribeRun; `wide` adds DUE,
// SPACING (start minus the previous run's end) and JOB.
std::string RenderRunsTable(const v1::ListScheduleRunsResponse& runs, bool wide, absl::Time now,
                            absl::TimeZone tz);

// One line of `kctl schedule runs -f`: "STARTED  HOST  RESULT  [command ID]".
std::string FormatRunLine(const v1::ScheduleRun& run, absl::Time now, absl::TimeZone tz);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_SCHEDULE_VIEW_H_

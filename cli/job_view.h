// Jobs and their commands as tables and text, shared by `kctl jobs`, `job`, `job --watch`, `exec`,
// `cancel`, `run` and `boot`.
#ifndef KFLEET_CLI_JOB_VIEW_H_
#define KFLEET_CLI_JOB_VIEW_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

// ID NAME STATE VERDICT HOSTS CREATED AGE; `wide` adds SUBMITTER and DURATION.
std::string RenderJobsTable(const google::protobuf::RepeatedPtrField<v1::Job>& jobs, bool wide,
                            absl::Time now, absl::TimeZone tz);

// A header (id, name, state, verdict, hosts, created, duration, steps), then one table row per
// command: HOST STEP STATE VERDICT EXIT WALL CPU MAXRSS DETAIL; DETAIL ends with the OOM kills
// (DescribeOom). `wide` adds the command id and PEAK, the peak memory of the command's cgroup.
std::string RenderJobDetail(const v1::Job& job, bool wide, absl::Time now, absl::TimeZone tz);

// One line for a command as exec ends: "host-a: PASS (exit 0, 1.2s)",
// "host-b: FAIL (exited with status 3, 0.4s)"; the result's detail when it has one. With `step`,
// it follows the host: "host-a reboot: PASS (...)". The OOM kills follow the parentheses:
// "host-a: FAIL (killed by SIGKILL, 2.1s) OOM-killed (limit 64 MiB, peak 64.0 MiB)". `wide` adds
// the peak memory of the command's cgroup when known and not already said: "(exit 0, 1.2s, peak
// 12 MiB)".
std::string CommandSummary(const v1::CommandInfo& command, absl::string_view step = "",
                           bool wide = false);

// What the OOM killer did to a command: "OOM-killed (limit 64 MiB, peak 64 MiB)" when its own
// process was killed, "1 OOM kill in its cgroup (...)" when another process of its cgroup was.
// "" when nothing happened, or when the result's detail says it already (agents write
// "OOM-killed: memory limit 64 MiB reached (...)" there when they know).
std::string DescribeOom(const v1::CommandResult& result);

// How many distinct hosts the job's commands run on.
int CountHosts(const v1::Job& job);

// How long the job ran, or has been running at `now`, as "1.2s", "3m5s".
std::string JobDuration(const v1::Job& job, absl::Time now);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_JOB_VIEW_H_

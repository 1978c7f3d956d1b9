// What `kctl run` and `kctl boot` show of the job they follow: a table redrawn on a terminal, one
// line per change otherwise, and a report when the job has ended.
#ifndef KFLEET_CLI_JOB_PROGRESS_H_
#define KFLEET_CLI_JOB_PROGRESS_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

// The step a command runs: its own copy, else the job spec's step at its index, else an empty
// step.
const v1::Step& CommandStep(const v1::Job& job, const v1::CommandInfo& command);

// A command's state in one word: WAITING (for a host), PENDING, RUNNING, SKIPPED, or its verdict
// once finished.
std::string CommandStateWord(const v1::CommandInfo& command);

// A line about the job ("job j-1 (smoke): running for 1m5s"), then one row per command:
// HOST STEP STATE ELAPSED DETAIL, ELAPSED counting up to `now` while a command runs and DETAIL
// (with the OOM kills, as DescribeOom says them) shortened. `wide` adds the command id. With
// `columns` > 0, no line is wider, so that each takes one line of the terminal.
std::string RenderProgressTable(const v1::Job& job, bool wide, absl::Time now, size_t columns);

// Where the job's tests are, for jobs with test steps: "tests 12/40  failed 2  skipped 1  re-runs 3
// ETA 1m30s" (ETA "?" when the controller cannot tell; left out once the job has ended). "" when
// the job has no tests counted (total and done zero).
std::string TestProgressLine(const v1::Job& job);

// The lines of a log that is not a terminal. Not thread-safe.
class ProgressLog {
 public:
  // One line per command whose host or state changed since the last call, e.g.
  //   "  12.3s  builder-1  kernel_build  RUNNING"
  //   "  97.0s  builder-1  kernel_build  PASS  built kernel 6.1.158-kf in 85 s (build 1a2b...)"
  // The time is when the change happened, counted from the job's creation (from `now` when the
  // controller did not say). ACCEPTED counts as PENDING, so that it prints nothing new. Then, when
  // the counts of TestProgressLine changed (not its ETA alone), "  45.0s  tests 12/40  ...".
  std::string Update(const v1::Job& job, absl::Time now);

 private:
  std::map<std::string, std::string> shown_;  // command id -> host and state last printed
  std::string tests_shown_;                   // the test counts last printed
};

// The report of an ended job: one CommandSummary line per command (with its step kind); when the
// job built a kernel, "kernel RELEASE, build IDENTITY12 (built in N s|reused) on BUILDER"; the
// build time (the kernel_build command's wall time), each reboot's time from reboot to
// registration, the job's total time; and the verdict, "PASS" or "VERDICT: why". A command the OOM
// killer hit says so on its line (CommandSummary); `wide` adds each command's peak memory.
std::string RenderJobReport(const v1::Job& job, absl::Time now, bool wide = false);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_JOB_PROGRESS_H_

// Submits a job and follows it to its end: the part `kctl run` and `kctl boot` share.
#ifndef KFLEET_CLI_JOB_FOLLOW_H_
#define KFLEET_CLI_JOB_FOLLOW_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/args.h"
#include "cli/context.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

// Submits `spec`, prints "job ID submitted" to stderr and follows the job with WatchJob, waiting
// out a controller restart as `kctl job --watch` does. Meanwhile, with `output` table or wide, it
// shows progress on stdout: on a terminal (io.out_is_tty) a table redrawn in place every second,
// otherwise a line per change (job_progress.h). When the job has ended it prints the report, or
// with json only the final Job, and returns the exit code of the job's verdict. Errors (the
// controller refused the job or went away for good) are returned for kctl to report.
absl::StatusOr<int> SubmitAndFollow(const v1::JobSpec& spec, OutputFormat output, Context& ctx);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_JOB_FOLLOW_H_

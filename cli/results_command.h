// `kctl results JOB` (a job's tests: a summary per suite and section, its failing tests, JUnit
// XML) and `kctl results compare BASELINE DEV` (regressions, fixed tests and flakes of a dev job
// against a baseline job).
#ifndef KFLEET_CLI_RESULTS_COMMAND_H_
#define KFLEET_CLI_RESULTS_COMMAND_H_

#include <string>

#include "cli/command_spec.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec ResultsCommand();

// What `kctl results JOB` prints as a table: the summary per suite and section, then the failing
// tests (with `all`, every test); "JOB has no test results." when there are none.
std::string RenderResultsReport(const v1::GetResultsResponse& results, bool all);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_RESULTS_COMMAND_H_

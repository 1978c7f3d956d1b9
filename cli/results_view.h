// A job's test results and a comparison of two jobs as text: what `kctl results`, `kctl results
// compare` and the reports of `kctl run` and `kctl boot` print.
#ifndef KFLEET_CLI_RESULTS_VIEW_H_
#define KFLEET_CLI_RESULTS_VIEW_H_

#include <string>

#include "kfleet/v1/common.pb.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

// A run failed when it ended TEST_FAIL or TEST_ERROR.
bool TestRunFailed(v1::TestStatus status);

// Whether any run of any test of `results` failed.
bool AnyTestFailed(const v1::GetResultsResponse& results);

// One table row per (suite, section): SUITE SECTION PASSED FAILED SKIPPED ERRORS TIME HOSTS,
// counting each test's first runs (one per host that ran it), TIME the sum of every run's
// duration and HOSTS the hosts that ran them. "" when there are no results.
std::string RenderResultsSummary(const v1::GetResultsResponse& results);

// One line per test that failed in some run (with `all`, per test), ordered by suite, section and
// name:
//   FAIL  generic/475  xfs_crc  guest-2  3/3 runs failed (history 3/12)  <detail's first line>
// The word is FAIL, ERROR (every failing run erred), PASS or SKIP (the first run's status); then
// the name, the section (the suite when the test has none), the hosts, the job's and the stored
// history's failure rates (TestHistory), and the detail of the first failing run (else of the
// first run).
std::string RenderTestLines(const v1::GetResultsResponse& results, bool all);

// The kernel a job ran: its build's release, else the releases its test results were recorded on
// (`results` of the same job, may be null), else "".
std::string JobKernel(const v1::Job& job, const v1::GetResultsResponse* results);

// `kctl results compare`: a header naming both jobs and their kernels (`baseline_kernel`,
// `dev_kernel`), then one line per test, e.g.
//   REGRESSION  kselftest  size:get_size  failed 3/3 runs on dev, passed 1/1 on baseline: <detail>
//   FLAKY  exec  t_flaky  failed 1/3 dev runs, 2/6 overall
// for REGRESSION, FIXED, FLAKY, NEW_TEST that failed on dev, and NOT_RUN; `all` adds the other
// new tests, STILL_FAILING and UNCHANGED. The suite reads SUITE.SECTION when the test has a
// section. A final line counts each kind.
std::string RenderComparison(const v1::CompareResultsResponse& comparison,
                             const std::string& baseline_kernel, const std::string& dev_kernel,
                             bool all);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_RESULTS_VIEW_H_

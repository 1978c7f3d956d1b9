// How a job's tests went against their stored history, and how a dev job's tests went against a
// baseline job's (DESIGN.md, "Tests and results"). Pure functions over stored TestRecords: the
// store fetches them, the FleetService answers with what these return.
#ifndef KFLEET_CONTROLLER_RESULTS_COMPARE_H_
#define KFLEET_CONTROLLER_RESULTS_COMPARE_H_

#include <vector>

#include "kfleet/v1/common.pb.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::controller {

// A run failed when it ended TEST_FAIL or TEST_ERROR; TEST_PASS and TEST_SKIP did not fail.
bool RunFailed(v1::TestStatus status);

// One TestHistory per test (suite, section, name) of `job`, ordered by suite, section and name:
// `job` counts the job's runs (first runs and re-runs), `history` the runs of the same test in
// `history` (every stored run of those tests, of any job, the job's own included). Records of
// `history` for tests that are not in `job` are ignored.
std::vector<v1::TestHistory> SummarizeTests(const std::vector<v1::TestRecord>& job,
                                            const std::vector<v1::TestRecord>& history);

// Every test of `baseline` or `dev` (the records of the two jobs) classified as ComparisonKind
// says, with its failure rates in each job and over `history` (every stored run of those tests,
// the two jobs' included), its first run's status in each job and the first line of the detail of
// dev's first failing run. A test that failed in every dev run and no baseline run is a
// REGRESSION, unless its runs outside the two jobs in `history` both failed and passed: a known
// flake, FLAKY. Sets `regression` when any test is a REGRESSION. Tests come ordered by kind
// (regressions, fixed, flaky, new, not run, still failing, unchanged), then by suite, section and
// name. The jobs themselves (`baseline`, `dev`) are left for the caller to fill.
v1::CompareResultsResponse CompareResults(const std::vector<v1::TestRecord>& baseline,
                                          const std::vector<v1::TestRecord>& dev,
                                          const std::vector<v1::TestRecord>& history);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_RESULTS_COMPARE_H_

// The `test` step on the agent (DESIGN.md, "Tests and results"): runs a suite (kselftest,
// fstests, blktests, or exec commands), parses its output as it runs, reports one TestResult per
// test as each ends, uploads the suite's raw result files as artifacts, and sums up a verdict.
//
// Every process of the step runs through TestStepContext::run_phase, which the caller makes
// cancellable and bounded by the step's timeout. A phase that ends CANCELLED or TIMEOUT ends the
// step with that verdict; the test running then is reported as TEST_ERROR.
#ifndef KFLEET_AGENT_SUITES_TEST_RUNNER_H_
#define KFLEET_AGENT_SUITES_TEST_RUNNER_H_

#include <functional>
#include <string>

#include "agent/exec/process.h"
#include "kfleet/v1/artifacts.grpc.pb.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

struct TestStepContext {
  std::string command_id;
  // This command's own directory: created empty by RunTestStep, which writes configs, results,
  // unpacked archives and loop device backing files there. The caller removes it afterwards.
  std::string work_dir;
  // Kept between commands: fstests trees cloned from git URLs and built. Empty: work_dir/cache.
  std::string cache_dir;
  // The command's log: the agent's own lines ("kfleet-agent: ...") go to its stdout.
  OutputSink* log = nullptr;
  // Runs one process to its end and returns how it ended (verdict PASS, FAIL with exit_code or
  // signal, TIMEOUT, CANCELLED; INFRA_ERROR if it could not start). Its output goes to `sink`,
  // which the runner provides: it forwards everything to `log` and parses stdout. After a phase
  // ended CANCELLED, later calls must return CANCELLED without running anything.
  std::function<kfleet::v1::CommandResult(const RunSpec& spec, OutputSink* sink)> run_phase;
  // Called once per test as it ends, in the order tests end; from the thread that reads the
  // phase's stdout, or the thread that called RunTestStep, never two at once.
  std::function<void(const kfleet::v1::TestResult&)> report;
  // The controller's artifact store, for kselftest archives and result files. Null: nothing is
  // uploaded (logged), and archive mode is an INFRA_ERROR.
  kfleet::v1::ArtifactService::StubInterface* artifacts = nullptr;
  // Where the host's disks are named by serial: fstests takes TEST_DEV and SCRATCH_DEV from
  // virtio-test and virtio-scratch there (a guest's pool `disks:`) when the step names none.
  std::string disk_dir = "/dev/disk/by-id";
};

// Runs `step` and returns the command's result: PASS when no test failed or erred and one passed
// (or the step has skips_ok), FAIL when one failed or erred (detail "2 of 40 tests failed:
// generic/001, generic/002"), NOTHING_RAN when every test was skipped (detail "nothing ran: 0
// passed, 3 skipped (NAME: the first skip's reason)..."), INFRA_ERROR when the suite
// could not run (detail names the problem and the fix), CANCELLED or TIMEOUT as run_phase ended.
// `tests` holds the counts of what was reported; with list_only, `listed_tests` the tests the step
// would run (none is run or reported). Blocking.
kfleet::v1::CommandResult RunTestStep(const kfleet::v1::TestStep& step, const TestStepContext& ctx);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_TEST_RUNNER_H_

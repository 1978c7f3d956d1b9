#include "cli/results_command.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/json.h"
#include "cli/junit.h"
#include "cli/results_view.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

absl::Status CheckJobId(const std::string& id, absl::string_view what) {
  if (absl::StartsWith(id, "j-")) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "results: ", what, " \"", id, "\" is not a job id (j-...); kctl jobs lists jobs"));
}

absl::StatusOr<int> RunCompare(const Invocation& inv, Context& ctx) {
  if (inv.args.size() != 3) {
    return absl::InvalidArgumentError(
        "results compare: give two jobs, the baseline first: kctl results compare BASELINE_JOB "
        "DEV_JOB");
  }
  if (inv.Has("junit")) {
    return absl::InvalidArgumentError(
        "results compare: --junit is for one job: kctl results JOB --junit FILE");
  }
  const std::string& baseline = inv.args[1];
  const std::string& dev = inv.args[2];
  RETURN_IF_ERROR(CheckJobId(baseline, "BASELINE_JOB"));
  RETURN_IF_ERROR(CheckJobId(dev, "DEV_JOB"));
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::CompareResultsResponse comparison, fleet->CompareResults(baseline, dev));
  int code = comparison.regression() ? kExitFail : kExitOk;
  if (inv.globals.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(std::string json, ToJson(comparison, JsonStyle::kPretty));
    ctx.io.out << json;
    return code;
  }
  // A job without a kernel build ran on the hosts' own kernels: its results say which.
  std::string kernels[2];
  const v1::Job* jobs[2] = {&comparison.baseline(), &comparison.dev()};
  for (int i = 0; i < 2; ++i) {
    kernels[i] = JobKernel(*jobs[i], nullptr);
    if (!kernels[i].empty()) continue;
    ASSIGN_OR_RETURN(v1::GetResultsResponse results, fleet->GetResults(i == 0 ? baseline : dev));
    kernels[i] = JobKernel(*jobs[i], &results);
  }
  v1::CompareResultsResponse shown = comparison;
  if (shown.baseline().id().empty()) shown.mutable_baseline()->set_id(baseline);
  if (shown.dev().id().empty()) shown.mutable_dev()->set_id(dev);
  ctx.io.out << RenderComparison(shown, kernels[0], kernels[1], inv.Has("all"));
  return code;
}

absl::StatusOr<int> RunResults(const Invocation& inv, Context& ctx) {
  if (inv.args[0] == "compare") return RunCompare(inv, ctx);
  if (inv.args.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "results: unexpected argument \"", inv.args[1], "\": kctl results ", inv.args[0],
        " shows one job; kctl results compare BASELINE_JOB DEV_JOB compares two"));
  }
  const std::string& id = inv.args[0];
  RETURN_IF_ERROR(CheckJobId(id, "JOB"));
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::GetResultsResponse results, fleet->GetResults(id));
  if (results.job().id().empty()) results.mutable_job()->set_id(id);
  if (inv.Has("junit")) {
    std::string path = inv.Get("junit");
    absl::Status written = WriteFileAtomic(path, RenderJunit(results));
    if (!written.ok()) {
      return WithExitCode(
          absl::InvalidArgumentError(absl::StrCat("results: --junit: ", written.message())),
          kExitUsage);
    }
    ctx.io.err << "wrote " << path << " (JUnit XML, " << results.tests_size() << " tests)\n";
  }
  int code = AnyTestFailed(results)                       ? kExitFail
             : results.job().verdict() == v1::NOTHING_RAN ? kExitNothingRan
                                                          : kExitOk;
  if (inv.globals.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(std::string json, ToJson(results, JsonStyle::kPretty));
    ctx.io.out << json;
    return code;
  }
  ctx.io.out << RenderResultsReport(results, inv.Has("all"));
  return code;
}

}  // namespace

std::string RenderResultsReport(const v1::GetResultsResponse& results, bool all) {
  std::string nothing_ran;
  if (results.job().verdict() == v1::NOTHING_RAN) {
    // The first command that ran nothing says why; a sharded step's commands each passed.
    std::string why = "no test passed or failed: every test was skipped";
    for (const v1::CommandInfo& c : results.job().commands()) {
      if (c.result().verdict() == v1::NOTHING_RAN && !c.result().detail().empty()) {
        why = absl::StrCat(c.host_name(), ": ", c.result().detail());
        break;
      }
    }
    nothing_ran = absl::StrCat("\nNOTHING_RAN  ", why, "\n");
  }
  std::string summary = RenderResultsSummary(results);
  if (summary.empty()) {
    return absl::StrCat(results.job().id(), " has no test results.\n", nothing_ran);
  }
  std::string lines = RenderTestLines(results, all);
  return absl::StrCat(summary, lines.empty() ? "" : "\n", lines, nothing_ran);
}

CommandSpec ResultsCommand() {
  return CommandSpec{
      .name = "results",
      .synopsis =
          "results JOB [--all] [--junit FILE] [-o table|json] | results compare BASELINE_JOB "
          "DEV_JOB [--all] [-o table|json]",
      .summary = "show a job's test results, or compare a dev job with a baseline job",
      .description =
          "kctl results JOB shows the results of the job's test steps: one row per suite and "
          "section with the tests that passed, failed, were skipped or could not be judged "
          "(ERRORS: the host crashed or went away), counting each test's first run on each "
          "host, the time all runs took and the hosts; then one line per test that failed in "
          "some run:\n\n"
          "    FAIL  generic/475  xfs_crc  guest-2  3/3 runs failed (history 3/12)  "
          "output mismatch\n\n"
          "with the section (the suite when there is none), the hosts, how many of the job's "
          "runs failed (the first run and its re-runs), how many of every stored run of the "
          "test failed, and the first line of the first failure's detail. --all lists every "
          "test, passed and skipped too. --junit FILE also writes the results as JUnit XML, "
          "for CI test reporters. -o json prints the GetResultsResponse message.\n\n"
          "kctl results compare BASELINE_JOB DEV_JOB names both jobs and their kernels, then "
          "prints one line per test that changed:\n\n"
          "    REGRESSION  kselftest  size:get_size  failed 3/3 runs on dev, passed 1/1 on "
          "baseline\n"
          "    FIXED  fstests.xfs_crc  generic/475  passed 1/1 runs on dev, failed 3/3 on "
          "baseline\n"
          "    FLAKY  exec  t_flaky  failed 1/3 dev runs, 2/6 overall\n\n"
          "REGRESSION: passed on the baseline, failed in every dev run (a new failure is re-run "
          "before it is called one; TestStep.reruns). FIXED: failed in every baseline run, "
          "passed on dev. FLAKY: failed in some runs and passed in others, in either job or in "
          "the stored history of other jobs. NEW_TEST (shown when it failed): not run on the "
          "baseline. NOT_RUN: run on the baseline, not on dev. --all adds the new tests that "
          "passed, STILL_FAILING (failed in every run of both) and UNCHANGED. The suite reads "
          "SUITE.SECTION for tests of a section. A last line counts each kind. -o json prints "
          "the CompareResultsResponse message.",
      .flags =
          {
              {.name = "all", .help = "List every test, not only the failing or changed ones."},
              {.name = "junit",
               .value_name = "FILE",
               .help = "Also write the job's results to FILE as JUnit XML."},
          },
      .min_args = 1,
      .max_args = 3,
      .args_hint =
          "a job id, e.g. kctl results j-3f2a9c01d4e5b677, or compare BASELINE_JOB DEV_JOB",
      .exit_codes = {{kExitOk, "no test failed (compare: no regression)"},
                     {kExitFail,
                      "a test failed or erred in some run (compare: at least one REGRESSION)"},
                     {kExitUsage, "bad arguments, or --junit FILE cannot be written"},
                     {kExitUnreachable, ""},
                     {kExitNotFound, "no such job"},
                     {kExitNothingRan,
                      "no test failed, and the job ran nothing: a test step's tests were all "
                      "skipped (NOTHING_RAN)"}},
      .examples =
          "kctl results j-3f2a9c01d4e5b677\n"
          "kctl results j-3f2a9c01d4e5b677 --all --junit results.xml\n"
          "# did the dev kernel break anything?\n"
          "kctl results compare j-3f2a9c01d4e5b677 j-9d41e0a27b3c5f18\n"
          "# the regressions, for a script\n"
          "kctl results compare j-3f2a9c01d4e5b677 j-9d41e0a27b3c5f18 -o json | \\\n"
          "  jq -r '.tests[] | select(.kind == \"REGRESSION\") | .name'\n",
      .run = &RunResults,
  };
}

}  // namespace kfleet::cli

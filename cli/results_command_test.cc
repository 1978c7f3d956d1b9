#include "cli/results_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "cli/kctl_test_runner.h"
#include "common/files.h"
#include "google/protobuf/util/json_util.h"

namespace kfleet::cli {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

void Add(v1::GetResultsResponse& results, const std::string& host, const std::string& suite,
         const std::string& section, const std::string& name, v1::TestStatus status,
         const std::string& detail = "", uint32_t run = 1) {
  v1::TestRecord* r = results.add_results();
  r->set_job_id(results.job().id());
  r->set_host_name(host);
  r->set_kernel_release("6.1.0-kf");
  r->mutable_result()->set_suite(suite);
  r->mutable_result()->set_section(section);
  r->mutable_result()->set_name(name);
  r->mutable_result()->set_status(status);
  r->mutable_result()->set_duration_ms(1000);
  r->mutable_result()->set_detail(detail);
  r->mutable_result()->set_run(run);
}

void AddHistory(v1::GetResultsResponse& results, const std::string& suite,
                const std::string& section, const std::string& name, uint32_t job_failed,
                uint32_t job_runs, uint32_t failed, uint32_t runs) {
  v1::TestHistory* h = results.add_tests();
  h->set_suite(suite);
  h->set_section(section);
  h->set_name(name);
  h->mutable_job()->set_failed(job_failed);
  h->mutable_job()->set_runs(job_runs);
  h->mutable_history()->set_failed(failed);
  h->mutable_history()->set_runs(runs);
}

// An fstests job: generic/475 fails in 3 of 3 runs on guest-2, the rest passes or is skipped.
v1::GetResultsResponse FstestsResults() {
  v1::GetResultsResponse r;
  r.mutable_job()->set_id("j-1");
  Add(r, "guest-1", "fstests", "xfs_crc", "generic/001", v1::TEST_PASS);
  Add(r, "guest-1", "fstests", "xfs_crc", "generic/002", v1::TEST_SKIP, "not supported");
  for (uint32_t run = 1; run <= 3; ++run) {
    Add(r, "guest-2", "fstests", "xfs_crc", "generic/475", v1::TEST_FAIL,
        "output mismatch (see 475.out.bad)\n--- a\n+++ b", run);
  }
  Add(r, "guest-2", "kselftest", "", "size:get_size", v1::TEST_PASS);
  AddHistory(r, "fstests", "xfs_crc", "generic/475", 3, 3, 3, 12);
  AddHistory(r, "fstests", "xfs_crc", "generic/001", 0, 1, 0, 4);
  return r;
}

class ResultsCommandTest : public KctlCommandTest {};

// Validates the summary per suite and section, one line per failing test with its rates and
// detail, and exit 1 because a test failed.
TEST_F(ResultsCommandTest, SummaryAndFailingTests) {
  kctl_.service.results["j-1"] = FstestsResults();
  EXPECT_EQ(kctl_.Run({"results", "j-1"}), 1) << kctl_.err();
  EXPECT_EQ(kctl_.out(),
            "SUITE       SECTION   PASSED   FAILED   SKIPPED   ERRORS   TIME   HOSTS\n"
            "fstests     xfs_crc   1        1        1         0        5.0s   guest-1,guest-2\n"
            "kselftest   -         1        0        0         0        1.0s   guest-2\n"
            "\n"
            "FAIL  generic/475  xfs_crc  guest-2  3/3 runs failed (history 3/12)  output "
            "mismatch (see 475.out.bad)\n");
  EXPECT_THAT(kctl_.service.calls(), ::testing::ElementsAre("GetResults j-1"));
}

// Validates --all: every test, with its status word and the section or, without one, the suite.
TEST_F(ResultsCommandTest, AllListsEveryTest) {
  kctl_.service.results["j-1"] = FstestsResults();
  EXPECT_EQ(kctl_.Run({"results", "j-1", "--all"}), 1);
  EXPECT_THAT(kctl_.out(),
              HasSubstr("PASS  generic/001  xfs_crc  guest-1  0/1 runs failed (history 0/4)\n"
                        "SKIP  generic/002  xfs_crc  guest-1  0/1 runs failed  not supported\n"
                        "FAIL  generic/475  xfs_crc  guest-2  3/3 runs failed (history 3/12)  "
                        "output mismatch (see 475.out.bad)\n"
                        "PASS  size:get_size  kselftest  guest-2  0/1 runs failed\n"));
}

// Validates that a job whose test step only skipped exits 10 and says why, with the first
// command's detail, while a failure in the same job still exits 1.
TEST_F(ResultsCommandTest, NothingRanExitsTen) {
  v1::GetResultsResponse skipped;
  skipped.mutable_job()->set_id("j-skip");
  skipped.mutable_job()->set_verdict(v1::NOTHING_RAN);
  v1::CommandInfo* c = skipped.mutable_job()->add_commands();
  c->set_host_name("guest-1");
  c->mutable_result()->set_verdict(v1::NOTHING_RAN);
  c->mutable_result()->set_detail(
      "nothing ran: 0 passed, 1 skipped (firmware:fw_run_tests.sh: test_firmware not found)");
  Add(skipped, "guest-1", "kselftest", "", "firmware:fw_run_tests.sh", v1::TEST_SKIP);
  kctl_.service.results["j-skip"] = skipped;
  EXPECT_EQ(kctl_.Run({"results", "j-skip"}), 10) << kctl_.err();
  EXPECT_THAT(kctl_.out(), EndsWith("\nNOTHING_RAN  guest-1: nothing ran: 0 passed, 1 skipped "
                                    "(firmware:fw_run_tests.sh: test_firmware not found)\n"));

  v1::GetResultsResponse failed = skipped;
  failed.mutable_job()->set_id("j-fail");
  Add(failed, "guest-2", "kselftest", "", "size:get_size", v1::TEST_FAIL);
  kctl_.service.results["j-fail"] = failed;
  EXPECT_EQ(kctl_.Run({"results", "j-fail"}), 1);
}

// Validates the exit codes: 0 with no failure, ERROR as a failure, 8 for an unknown job, 2 for a
// word that is not a job id, 3 for an unreachable controller.
TEST_F(ResultsCommandTest, ExitCodes) {
  v1::GetResultsResponse passed;
  passed.mutable_job()->set_id("j-ok");
  Add(passed, "guest-1", "exec", "", "t1", v1::TEST_PASS);
  Add(passed, "guest-1", "exec", "", "t2", v1::TEST_SKIP);
  kctl_.service.results["j-ok"] = passed;
  EXPECT_EQ(kctl_.Run({"results", "j-ok"}), 0);
  EXPECT_THAT(kctl_.out(), Not(HasSubstr("\nFAIL  ")));

  v1::GetResultsResponse erred = passed;
  erred.mutable_job()->set_id("j-err");
  Add(erred, "guest-1", "exec", "", "t3", v1::TEST_ERROR, "guest-1 went away");
  kctl_.service.results["j-err"] = erred;
  EXPECT_EQ(kctl_.Run({"results", "j-err"}), 1);
  EXPECT_THAT(kctl_.out(),
              HasSubstr("ERROR  t3  exec  guest-1  1/1 runs failed  guest-1 went away"));

  EXPECT_EQ(kctl_.Run({"results", "j-nope"}), 8);
  EXPECT_THAT(kctl_.err(), HasSubstr("GetResults: no job j-nope"));
  EXPECT_EQ(kctl_.Run({"results", "nope"}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("is not a job id"));

  v1::GetResultsResponse empty;
  empty.mutable_job()->set_id("j-empty");
  kctl_.service.results["j-empty"] = empty;
  EXPECT_EQ(kctl_.Run({"results", "j-empty"}), 0);
  EXPECT_EQ(kctl_.out(), "j-empty has no test results.\n");

  kctl_.service.error = grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  EXPECT_EQ(kctl_.Run({"results", "j-ok"}), 3);
}

// Validates -o json: the GetResultsResponse message, parseable, with the same exit code.
TEST_F(ResultsCommandTest, Json) {
  kctl_.service.results["j-1"] = FstestsResults();
  EXPECT_EQ(kctl_.Run({"results", "j-1", "-o", "json"}), 1);
  v1::GetResultsResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(kctl_.out(), &parsed).ok())
      << kctl_.out();
  EXPECT_EQ(parsed.results_size(), 6);
  EXPECT_EQ(parsed.tests(0).history().runs(), 12u);
}

// Validates --junit: the file is written and named on stderr, the usual output still printed.
TEST_F(ResultsCommandTest, JunitFile) {
  kctl_.service.results["j-1"] = FstestsResults();
  std::string path = dir_ + "/junit.xml";
  EXPECT_EQ(kctl_.Run({"results", "j-1", "--junit", path}), 1);
  absl::StatusOr<std::string> xml = ReadFile(path);
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, HasSubstr("<testcase classname=\"fstests.xfs_crc\" name=\"generic/475\""));
  EXPECT_THAT(*xml, HasSubstr("re-run 2 times: 2 failed"));
  EXPECT_THAT(kctl_.err(), HasSubstr("wrote " + path + " (JUnit XML, 2 tests)"));
  EXPECT_THAT(kctl_.out(), HasSubstr("FAIL  generic/475"));

  EXPECT_EQ(kctl_.Run({"results", "j-1", "--junit", dir_ + "/no/such/dir/x.xml"}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("results: --junit: "));
}

v1::TestComparison Comparison(const std::string& suite, const std::string& section,
                              const std::string& name, v1::ComparisonKind kind,
                              uint32_t base_failed, uint32_t base_runs, uint32_t dev_failed,
                              uint32_t dev_runs, uint32_t failed, uint32_t runs,
                              const std::string& detail = "") {
  v1::TestComparison t;
  t.set_suite(suite);
  t.set_section(section);
  t.set_name(name);
  t.set_kind(kind);
  t.mutable_baseline()->set_failed(base_failed);
  t.mutable_baseline()->set_runs(base_runs);
  t.mutable_dev()->set_failed(dev_failed);
  t.mutable_dev()->set_runs(dev_runs);
  t.mutable_history()->set_failed(failed);
  t.mutable_history()->set_runs(runs);
  t.set_detail(detail);
  return t;
}

void SetUpComparison(FakeFleetService& service, bool regression) {
  v1::GetResultsResponse base;
  base.mutable_job()->set_id("j-base");
  Add(base, "guest-1", "exec", "", "t", v1::TEST_PASS);
  service.results["j-base"] = base;
  v1::GetResultsResponse dev;
  dev.mutable_job()->set_id("j-dev");
  service.results["j-dev"] = dev;

  v1::CompareResultsResponse& c = service.comparison;
  c.mutable_baseline()->set_id("j-base");
  c.mutable_baseline()->mutable_spec()->set_name("baseline");
  c.mutable_dev()->set_id("j-dev");
  c.mutable_dev()->mutable_build()->set_release("6.2.0-rc1-kf");
  if (regression) {
    *c.add_tests() = Comparison("kselftest", "", "size:get_size", v1::REGRESSION, 0, 1, 3, 3, 3, 4,
                                "not ok 1 get_size\nmore");
  }
  *c.add_tests() = Comparison("fstests", "xfs_crc", "generic/475", v1::FIXED, 3, 3, 0, 1, 3, 4);
  *c.add_tests() = Comparison("exec", "", "t_flaky", v1::FLAKY, 0, 3, 1, 3, 2, 6);
  *c.add_tests() = Comparison("exec", "", "t_new_bad", v1::NEW_TEST, 0, 0, 1, 1, 1, 1, "boom");
  *c.add_tests() = Comparison("exec", "", "t_new_ok", v1::NEW_TEST, 0, 0, 0, 1, 0, 1);
  *c.add_tests() = Comparison("exec", "", "t_gone", v1::NOT_RUN, 0, 2, 0, 0, 0, 2);
  *c.add_tests() = Comparison("exec", "", "t_still", v1::STILL_FAILING, 1, 1, 2, 2, 3, 3, "x");
  *c.add_tests() = Comparison("exec", "", "t_same", v1::UNCHANGED, 0, 1, 0, 1, 0, 2);
  c.set_regression(regression);
}

// Validates the compare header (both jobs, the kernel of a build and of the hosts), one line per
// regression, fix, flake, failing new test and test not run, the count line, and exit 1 on a
// regression.
TEST_F(ResultsCommandTest, CompareLinesAndExitOnRegression) {
  SetUpComparison(kctl_.service, /*regression=*/true);
  EXPECT_EQ(kctl_.Run({"results", "compare", "j-base", "j-dev"}), 1) << kctl_.err();
  EXPECT_EQ(kctl_.out(),
            "baseline j-base (baseline) on 6.1.0-kf\n"
            "dev      j-dev on 6.2.0-rc1-kf\n"
            "REGRESSION  kselftest  size:get_size  failed 3/3 runs on dev, passed 1/1 on baseline: "
            "not ok 1 get_size\n"
            "FIXED  fstests.xfs_crc  generic/475  passed 1/1 runs on dev, failed 3/3 on baseline\n"
            "FLAKY  exec  t_flaky  failed 1/3 dev runs, 2/6 overall\n"
            "NEW_TEST  exec  t_new_bad  new on dev, failed 1/1 runs: boom\n"
            "NOT_RUN  exec  t_gone  not run on dev, ran 2 times on baseline (failed 0)\n"
            "1 regressions, 1 fixed, 1 flaky, 2 new (1 failing), 1 not run, 1 still failing, "
            "1 unchanged\n");
  EXPECT_THAT(kctl_.service.calls(),
              ::testing::ElementsAre("CompareResults j-base j-dev", "GetResults j-base"));
}

// Validates --all (the passing new test, STILL_FAILING and UNCHANGED too), exit 0 without a
// regression, and -o json.
TEST_F(ResultsCommandTest, CompareAllAndJson) {
  SetUpComparison(kctl_.service, /*regression=*/false);
  EXPECT_EQ(kctl_.Run({"results", "compare", "j-base", "j-dev", "--all"}), 0);
  EXPECT_THAT(kctl_.out(), HasSubstr("NEW_TEST  exec  t_new_ok  new on dev, passed 1/1 runs\n"));
  EXPECT_THAT(kctl_.out(),
              HasSubstr("STILL_FAILING  exec  t_still  failed 2/2 runs on dev and 1/1 on "
                        "baseline: x\n"));
  EXPECT_THAT(kctl_.out(),
              HasSubstr("UNCHANGED  exec  t_same  no failure in 1 dev and 1 baseline runs\n"));
  EXPECT_THAT(kctl_.out(), Not(HasSubstr("REGRESSION")));

  EXPECT_EQ(kctl_.Run({"results", "compare", "j-base", "j-dev", "-o", "json"}), 0);
  v1::CompareResultsResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(kctl_.out(), &parsed).ok());
  EXPECT_EQ(parsed.tests_size(), 7);
}

// Validates compare's usage errors and an unknown job.
TEST_F(ResultsCommandTest, CompareErrors) {
  SetUpComparison(kctl_.service, true);
  EXPECT_EQ(kctl_.Run({"results", "compare", "j-base"}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("kctl results compare BASELINE_JOB DEV_JOB"));
  EXPECT_EQ(kctl_.Run({"results", "compare", "j-base", "dev"}), 2);
  EXPECT_EQ(kctl_.Run({"results", "j-base", "j-dev"}), 2);
  EXPECT_THAT(kctl_.service.calls(), IsEmpty());
  EXPECT_EQ(kctl_.Run({"results", "compare", "j-base", "j-gone"}), 8);
}

// Validates that kctl run prints the test results after a job with test steps, and the verdict
// last.
TEST_F(ResultsCommandTest, RunReportShowsTestResults) {
  std::string path = dir_ + "/tests.yaml";
  std::ofstream(path) << "hosts: {names: [guest-2]}\nsteps: [{exec: [uname]}]\n";
  v1::Job job;
  job.set_id("j-1");
  job.set_state(v1::JOB_DONE);
  job.set_verdict(v1::FAIL);
  job.mutable_spec()->add_steps()->mutable_test()->set_suite("fstests");
  job.mutable_tests()->set_total(3);
  job.mutable_tests()->set_done(3);
  job.mutable_tests()->set_failed(1);
  kctl_.service.job = job;
  kctl_.service.watch = {job};
  kctl_.service.results["j-1"] = FstestsResults();
  EXPECT_EQ(kctl_.Run({"run", "-f", path}), 1) << kctl_.err();
  EXPECT_THAT(kctl_.out(), HasSubstr("tests 3/3  failed 1  skipped 0  re-runs 0\n"));
  EXPECT_THAT(kctl_.out(),
              HasSubstr("FAIL  generic/475  xfs_crc  guest-2  3/3 runs failed (history 3/12)"));
  EXPECT_THAT(kctl_.out(), EndsWith("FAIL\n"));
}

}  // namespace
}  // namespace kfleet::cli

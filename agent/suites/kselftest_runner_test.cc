#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/suites/fake_artifact_store.h"
#include "agent/suites/step_harness.h"
#include "agent/suites/test_runner.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const std::string kTestdata = KFLEET_SUITES_TESTDATA;
constexpr char kLinuxTree[] = "/var/cache/kfleet/linux-source-6.1";

v1::TestStep DirStep() {
  v1::TestStep step;
  step.set_suite("kselftest");
  step.set_section("smoke");
  step.mutable_kselftest()->set_dir(kTestdata + "/kselftest");
  return step;
}

// Validates that dir mode runs a collection with run_kselftest.sh -c and reports each test once,
// as TAP shows it, with the step's section and run, and a failure's output in its detail.
TEST(KselftestRunnerTest, DirModeCollection) {
  StepHarness h;
  v1::TestStep step = DirStep();
  step.mutable_kselftest()->add_targets("demo");
  v1::CommandResult r = h.Run(step);
  std::vector<v1::TestResult> results = h.results();
  EXPECT_THAT(Summary(results), ElementsAre("TEST_PASS demo:pass.sh", "TEST_FAIL demo:fail.sh",
                                            "TEST_SKIP demo:skip.sh"));
  for (const v1::TestResult& t : results) {
    EXPECT_EQ(t.suite(), "kselftest");
    EXPECT_EQ(t.section(), "smoke");
    EXPECT_EQ(t.run(), 1u);
    EXPECT_GE(t.duration_ms(), 0);
  }
  EXPECT_THAT(results[1].detail(), HasSubstr("expected 1, got 2"));
  EXPECT_EQ(r.verdict(), v1::FAIL);
  EXPECT_EQ(r.detail(), "1 of 3 tests failed: demo:fail.sh");
  EXPECT_EQ(r.tests().passed(), 1u);
  EXPECT_EQ(r.tests().failed(), 1u);
  EXPECT_EQ(r.tests().skipped(), 1u);
}

// Validates that named tests run alone (run_kselftest.sh -t) and carry the step's run number.
TEST(KselftestRunnerTest, DirModeSingleTest) {
  StepHarness h;
  v1::TestStep step = DirStep();
  step.add_tests("demo:pass.sh");
  step.set_run(3);
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail();
  ASSERT_THAT(Summary(h.results()), ElementsAre("TEST_PASS demo:pass.sh"));
  EXPECT_EQ(h.results()[0].run(), 3u);
}

// Validates that a test whose output announces a plan and then reports in another form (kcmp_test
// of Linux 6.1: "PASS:" lines and kselftest.h's counters) passes as the runner's own line says,
// with no errors for the plan's numbers.
TEST(KselftestRunnerTest, PlanWithoutTestLinesPasses) {
  StepHarness h;
  v1::TestStep step = DirStep();
  step.mutable_kselftest()->add_targets("counters");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail();
  EXPECT_THAT(Summary(h.results()), ElementsAre("TEST_PASS counters:plan_only.sh"));
  EXPECT_EQ(r.tests().passed(), 1u);
  EXPECT_EQ(r.tests().errors(), 0u);
}

// Validates that a re-run of failed subtests runs the tests that print them, each once
// (run_kselftest.sh -t knows no subtests and rejects their names).
TEST(KselftestRunnerTest, RerunOfSubtestRunsItsTest) {
  StepHarness h;
  v1::TestStep step = DirStep();
  step.add_tests("counters:plan_only.sh/#1");
  step.add_tests("counters:plan_only.sh/#2");
  step.add_tests("demo:fail.sh/global.frobnicate");
  step.add_tests("demo:fail.sh");
  step.set_run(2);
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::FAIL) << r.detail();
  EXPECT_THAT(Summary(h.results()),
              ElementsAre("TEST_PASS counters:plan_only.sh", "TEST_FAIL demo:fail.sh"));
  EXPECT_THAT(h.log(), Not(HasSubstr("No such test")));
}

// Validates that list_only lists the selected collections' tests and runs none.
TEST(KselftestRunnerTest, ListOnly) {
  StepHarness h;
  v1::TestStep step = DirStep();
  step.mutable_kselftest()->add_targets("demo");
  step.set_list_only(true);
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail();
  EXPECT_THAT(r.listed_tests(), ElementsAre("demo:pass.sh", "demo:fail.sh", "demo:skip.sh"));
  EXPECT_THAT(h.results(), IsEmpty());
}

// Validates that a directory without run_kselftest.sh is an infrastructure error that says how
// to fix it.
TEST(KselftestRunnerTest, MissingDirIsInfraError) {
  StepHarness h;
  v1::TestStep step = DirStep();
  step.mutable_kselftest()->set_dir(h.top() + "/nothing");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), HasSubstr("has no executable run_kselftest.sh"));
  EXPECT_THAT(r.detail(), HasSubstr("install"));
}

// Validates that a kernel tree without selftests is an infrastructure error.
TEST(KselftestRunnerTest, MissingTreeIsInfraError) {
  StepHarness h;
  v1::TestStep step;
  step.set_suite("kselftest");
  step.mutable_kselftest()->set_tree(h.top());
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), HasSubstr("is not a kernel source tree"));
}

// Validates that a cancel while a test runs reports that test as an error, and the step as
// cancelled.
TEST(KselftestRunnerTest, CancelReportsRunningTestAsError) {
  StepHarness h;
  v1::TestStep step = DirStep();
  step.mutable_kselftest()->add_targets("slow");
  h.CancelWhenLogged("# sleeping");
  v1::CommandResult r = h.Run(step);
  EXPECT_TRUE(h.CancelledWhileRunning(r, {"TEST_ERROR slow:sleep.sh"}));
  EXPECT_EQ(r.tests().errors(), 1u);
}

// Validates that a step that runs past its timeout ends TIMEOUT with the running test an error.
TEST(KselftestRunnerTest, TimeoutReportsRunningTestAsError) {
  StepHarness h;
  h.set_timeout(absl::Seconds(1));
  v1::TestStep step = DirStep();
  step.mutable_kselftest()->add_targets("slow");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::TIMEOUT);
  ASSERT_THAT(Summary(h.results()), ElementsAre("TEST_ERROR slow:sleep.sh"));
  EXPECT_THAT(h.results()[0].detail(), HasSubstr("timed out"));
}

// Validates archive mode: the archive is downloaded from the artifact store, unpacked with tar,
// run, and the raw TAP is uploaded as kselftest.tap.
TEST(KselftestRunnerTest, ArchiveMode) {
  StepHarness h;
  const std::string tarball = h.top() + "/kselftest.tar.gz";
  ASSERT_EQ(
      std::system(absl::StrCat("tar -czf ", tarball, " -C ", kTestdata, " kselftest").c_str()), 0);
  absl::StatusOr<std::string> blob = ReadFile(tarball);
  ASSERT_TRUE(blob.ok());
  FakeArtifactStore store;
  v1::TestStep step;
  step.set_suite("kselftest");
  v1::Artifact* archive = step.mutable_kselftest()->mutable_archive();
  archive->set_name("kselftest.tar.gz");
  archive->set_sha256(store.Put(*blob));
  step.add_tests("demo:pass.sh");
  v1::CommandResult r = h.Run(step, store.stub());
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail() << h.log();
  EXPECT_THAT(Summary(h.results()), ElementsAre("TEST_PASS demo:pass.sh"));
  std::map<std::string, std::string> uploads = store.uploads();
  ASSERT_EQ(uploads.count("kselftest.tap"), 1u) << h.log();
  EXPECT_THAT(uploads["kselftest.tap"], HasSubstr("ok 1 selftests: demo: pass.sh"));
}

// Validates that an archive the store does not have is an infrastructure error naming it.
TEST(KselftestRunnerTest, ArchiveMissingIsInfraError) {
  StepHarness h;
  FakeArtifactStore store;
  v1::TestStep step;
  step.set_suite("kselftest");
  v1::Artifact* archive = step.mutable_kselftest()->mutable_archive();
  archive->set_name("kselftest.tar.gz");
  archive->set_sha256(std::string(64, 'a'));
  v1::CommandResult r = h.Run(step, store.stub());
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), HasSubstr("download of kselftest.tar.gz"));
  EXPECT_THAT(h.results(), IsEmpty());
}

// Validates tree mode against the real kselftest `size` collection of Linux 6.1: make run_tests
// builds and runs get_size, whose real TAP gives a passing size:get_size.
TEST(KselftestRunnerTest, RealTreeSize) {
  if (!std::filesystem::exists(std::string(kLinuxTree) + "/tools/testing/selftests/size")) {
    GTEST_SKIP() << kLinuxTree << " is missing: scripts/lib.sh unpacks Debian's linux-source-6.1";
  }
  StepHarness h;
  v1::TestStep step;
  step.set_suite("kselftest");
  step.mutable_kselftest()->set_tree(kLinuxTree);
  step.mutable_kselftest()->add_targets("size");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail() << "\n" << h.log();
  std::vector<std::string> summary = Summary(h.results());
  EXPECT_THAT(summary, testing::Contains("TEST_PASS size:get_size")) << h.log();
}

}  // namespace
}  // namespace kfleet::agent

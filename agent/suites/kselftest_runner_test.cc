#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/suites/fake_artifact_store.h"
#include "agent/suites/step_harness.h"
#include "agent/suites/test_runner.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
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

// A kernel tree under `top` whose tools/testing/selftests/Makefile stands in for the real one:
// only `install`, which "builds" each of TARGETS under O= (kselftest/TARGET, noting in the record
// when it was there already, and failing when another make builds there at the same time) and
// installs testdata/kselftest's runner with those of its collections into INSTALL_PATH. Each
// make appends its command line to top/make.record.
std::string FakeTree(const std::string& top) {
  const std::string tree = top + "/linux";
  const std::string selftests = tree + "/tools/testing/selftests";
  EXPECT_TRUE(MakeDirs(selftests).ok());
  const std::string src = kTestdata + "/kselftest";
  const std::string record = top + "/make.record";
  const std::string makefile = absl::StrCat(
      "TARGETS ?= demo counters slow\n", "install:\n",
      "\t@echo \"make $(MAKECMDGOALS) O=$(O) INSTALL_PATH=$(INSTALL_PATH) TARGETS=$(TARGETS)\" >> ",
      record, "\n", "\t@mkdir -p $(O)/kselftest $(INSTALL_PATH)\n",
      "\t@mkdir $(O)/building || { echo \"another make builds in $(O)\" >&2; exit 2; }\n",
      "\t@for t in $(TARGETS); do [ ! -e $(O)/kselftest/$$t ] || echo \"reused $$t\" >> ", record,
      "; touch $(O)/kselftest/$$t; done\n", "\t@sleep 0.3; rmdir $(O)/building\n", "\t@cp ", src,
      "/run_kselftest.sh $(INSTALL_PATH)/\n", "\t@: > $(INSTALL_PATH)/kselftest-list.txt\n",
      "\t@for t in $(TARGETS); do [ ! -d ", src, "/$$t ] || { cp -r ", src,
      "/$$t $(INSTALL_PATH)/; grep \"^$$t:\" ", src,
      "/kselftest-list.txt >> $(INSTALL_PATH)/kselftest-list.txt; }; done\n");
  EXPECT_TRUE(WriteFileAtomic(selftests + "/Makefile", makefile).ok());
  return tree;
}

// The command lines FakeTree's Makefile recorded, and its "reused TARGET" lines.
std::vector<std::string> MakeRecord(const std::string& top) {
  absl::StatusOr<std::string> text = ReadFile(top + "/make.record");
  if (!text.ok()) return {};
  return absl::StrSplit(*text, '\n', absl::SkipEmpty());
}

v1::TestStep TreeStep(const std::string& tree) {
  v1::TestStep step;
  step.set_suite("kselftest");
  step.mutable_kselftest()->set_tree(tree);
  return step;
}

// Validates that tree mode builds the collections with make install, objects in the cache and
// the installed tests in the command's work dir, and runs the installed run_kselftest.sh -c.
TEST(KselftestRunnerTest, TreeModeInstallsAndRunsInstalledTests) {
  StepHarness h;
  v1::TestStep step = TreeStep(FakeTree(h.top()));
  step.mutable_kselftest()->add_targets("demo");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::FAIL) << r.detail() << h.log();
  EXPECT_THAT(Summary(h.results()), ElementsAre("TEST_PASS demo:pass.sh", "TEST_FAIL demo:fail.sh",
                                                "TEST_SKIP demo:skip.sh"));
  EXPECT_THAT(MakeRecord(h.top()), ElementsAre(MatchesRegex(absl::StrCat(
                                       "make install O=", h.top(),
                                       "/cache/kselftest-[0-9a-f]{16}/out INSTALL_PATH=", h.top(),
                                       "/work/kselftest TARGETS=demo"))));
}

// Validates that a re-run of a subtest builds only its test's collection, in the build directory
// of the first run, whose objects it finds there, and runs the test that prints the subtest.
TEST(KselftestRunnerTest, TreeModeRerunReusesBuild) {
  StepHarness h;
  const std::string tree = FakeTree(h.top());
  v1::TestStep first = TreeStep(tree);
  first.mutable_kselftest()->add_targets("demo");
  first.mutable_kselftest()->add_targets("counters");
  h.Run(first);
  v1::TestStep rerun = TreeStep(tree);
  rerun.add_tests("demo:fail.sh/global.frobnicate");
  rerun.set_run(2);
  v1::CommandResult r = h.Run(rerun);
  EXPECT_EQ(r.verdict(), v1::FAIL) << r.detail() << h.log();
  std::vector<v1::TestResult> results = h.results();
  ASSERT_FALSE(results.empty());
  EXPECT_EQ(results.back().name(), "demo:fail.sh");
  EXPECT_EQ(results.back().run(), 2u);
  std::vector<std::string> record = MakeRecord(h.top());
  ASSERT_EQ(record.size(), 3u) << h.log();
  EXPECT_THAT(record[0], HasSubstr(" TARGETS=counters demo"));
  EXPECT_THAT(record[1], HasSubstr(" TARGETS=demo"));
  EXPECT_EQ(record[2], "reused demo");
  const std::string out0 = record[0].substr(0, record[0].find(" INSTALL_PATH="));
  EXPECT_EQ(record[1].substr(0, record[1].find(" INSTALL_PATH=")), out0);
}

// Validates that steps on one tree that run at the same time, each in its own work dir, build
// one after the other in the shared build directory and both run their tests.
TEST(KselftestRunnerTest, TreeModeConcurrentStepsBuildInTurn) {
  StepHarness h;
  v1::TestStep step = TreeStep(FakeTree(h.top()));
  step.add_tests("demo:pass.sh");
  TestStepContext a = h.Context();
  TestStepContext b = h.Context();
  a.work_dir = h.top() + "/work-a";
  b.work_dir = h.top() + "/work-b";
  v1::CommandResult ra, rb;
  std::thread ta([&] { ra = RunTestStep(step, a); });
  std::thread tb([&] { rb = RunTestStep(step, b); });
  ta.join();
  tb.join();
  EXPECT_EQ(ra.verdict(), v1::PASS) << ra.detail() << h.log();
  EXPECT_EQ(rb.verdict(), v1::PASS) << rb.detail() << h.log();
  EXPECT_THAT(Summary(h.results()),
              ElementsAre("TEST_PASS demo:pass.sh", "TEST_PASS demo:pass.sh"));
  EXPECT_THAT(MakeRecord(h.top()), Contains("reused demo"));
}

// Validates that list_only in tree mode lists what the installed runner lists for the targets.
TEST(KselftestRunnerTest, TreeModeListOnly) {
  StepHarness h;
  v1::TestStep step = TreeStep(FakeTree(h.top()));
  step.mutable_kselftest()->add_targets("demo");
  step.set_list_only(true);
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail() << h.log();
  EXPECT_THAT(r.listed_tests(), ElementsAre("demo:pass.sh", "demo:fail.sh", "demo:skip.sh"));
  EXPECT_THAT(h.results(), IsEmpty());
}

// Validates that a target that installs no tests (it did not build) is an infrastructure error
// that names it, and nothing runs.
TEST(KselftestRunnerTest, TreeModeTargetNotInstalledIsInfraError) {
  StepHarness h;
  v1::TestStep step = TreeStep(FakeTree(h.top()));
  step.mutable_kselftest()->add_targets("demo");
  step.mutable_kselftest()->add_targets("nosuch");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), HasSubstr("make install installed no tests of nosuch ("));
  EXPECT_THAT(h.results(), IsEmpty());
}

// Validates that a make install that fails is an infrastructure error with make's own words.
TEST(KselftestRunnerTest, TreeModeInstallFailureIsInfraError) {
  StepHarness h;
  const std::string tree = FakeTree(h.top());
  ASSERT_TRUE(WriteFileAtomic(tree + "/tools/testing/selftests/Makefile",
                              "install:\n\t@echo 'demo.c: syntax error' >&2; exit 2\n")
                  .ok());
  v1::TestStep step = TreeStep(tree);
  step.mutable_kselftest()->add_targets("demo");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), HasSubstr("building and installing kselftests (make install) failed"));
  EXPECT_THAT(r.detail(), HasSubstr("demo.c: syntax error"));
}

// Validates tree mode against the real kselftest `size` collection of Linux 6.1: make install
// builds get_size, whose real TAP gives a passing size:get_size.
TEST(KselftestRunnerTest, RealTreeSize) {
  if (!std::filesystem::exists(std::string(kLinuxTree) + "/tools/testing/selftests/size")) {
    GTEST_SKIP() << kLinuxTree << " is missing: scripts/lib.sh unpacks Debian's linux-source-6.1";
  }
  StepHarness h;
  v1::TestStep step = TreeStep(kLinuxTree);
  step.mutable_kselftest()->add_targets("size");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail() << "\n" << h.log();
  std::vector<std::string> summary = Summary(h.results());
  EXPECT_THAT(summary, Contains("TEST_PASS size:get_size")) << h.log();
}

// Validates that the scripts of a real Linux 6.1 collection find the programs built for them:
// mount's run_*.sh call ./unprivileged-remount-test and ./nosymfollow-test, which `make
// run_tests` with O= leaves out of their reach (exit 127).
TEST(KselftestRunnerTest, RealTreeScriptsFindTheirPrograms) {
  if (!std::filesystem::exists(std::string(kLinuxTree) + "/tools/testing/selftests/mount")) {
    GTEST_SKIP() << kLinuxTree << " is missing: scripts/lib.sh unpacks Debian's linux-source-6.1";
  }
  StepHarness h;
  v1::TestStep step = TreeStep(kLinuxTree);
  step.mutable_kselftest()->add_targets("mount");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail() << "\n" << h.log();
  EXPECT_THAT(Summary(h.results()), ElementsAre("TEST_PASS mount:run_unprivileged_remount.sh",
                                                "TEST_PASS mount:run_nosymfollow.sh"))
      << h.log();
}

}  // namespace
}  // namespace kfleet::agent

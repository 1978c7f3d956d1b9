#include "agent/suites/test_runner.h"

#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/suites/fake_artifact_store.h"
#include "agent/suites/step_harness.h"
#include "agent/suites/suite_run.h"
#include "agent/suites/suite_test_util.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

const std::string kTestdata = KFLEET_SUITES_TESTDATA;

using testing_util::Keys;

v1::TestStep ExecStep(std::vector<std::string> argv, std::vector<std::string> tests) {
  v1::TestStep step;
  step.set_suite("exec");
  for (std::string& a : argv) step.add_argv(std::move(a));
  for (std::string& t : tests) step.add_tests(std::move(t));
  return step;
}

// Validates that exec runs argv once per test with {test} replaced: exit 0 passes, exit 4 skips,
// another exit fails with its code and stderr in the detail.
TEST(ExecRunnerTest, OneCommandPerTest) {
  StepHarness h;
  v1::TestStep step = ExecStep(
      {"sh", "-c", "case {test} in ok) exit 0;; skip) exit 4;; *) echo boom >&2; exit 3;; esac"},
      {"ok", "skip", "bad"});
  step.set_section("s1");
  v1::CommandResult r = h.Run(step);
  std::vector<v1::TestResult> results = h.results();
  EXPECT_THAT(Summary(results), ElementsAre("TEST_PASS ok", "TEST_SKIP skip", "TEST_FAIL bad"));
  EXPECT_THAT(results[2].detail(), HasSubstr("exited with status 3"));
  EXPECT_THAT(results[2].detail(), HasSubstr("boom"));
  for (const v1::TestResult& t : results) {
    EXPECT_EQ(t.suite(), "exec");
    EXPECT_EQ(t.section(), "s1");
    EXPECT_GE(t.duration_ms(), 0);
  }
  EXPECT_EQ(r.verdict(), v1::FAIL);
  EXPECT_EQ(r.detail(), "1 of 3 tests failed: bad");
}

// Validates that a step whose tests were all skipped ends NOTHING_RAN, its detail counting them
// and giving the first skip's reason (the suite's words and the test's last line of stderr); that
// skips_ok makes it a pass; and that one test passing is enough.
TEST(ExecRunnerTest, AllSkippedIsNothingRan) {
  const std::vector<std::string> argv = {
      "sh", "-c",
      "case {test} in ok) exit 0;; *) echo 'test_firmware module not found' >&2; exit 4;; esac"};
  StepHarness h;
  v1::CommandResult r = h.Run(ExecStep(argv, {"fw_a", "fw_b", "fw_c"}));
  EXPECT_EQ(r.verdict(), v1::NOTHING_RAN);
  EXPECT_EQ(r.detail(),
            "nothing ran: 0 passed, 3 skipped (fw_a: skipped (exit 4): test_firmware module not "
            "found); skips_ok: true in the step makes this a pass");
  EXPECT_EQ(r.tests().skipped(), 3u);
  EXPECT_EQ(r.tests().passed(), 0u);

  StepHarness ok;
  v1::TestStep step = ExecStep(argv, {"fw_a", "fw_b", "fw_c"});
  step.set_skips_ok(true);
  r = ok.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail();
  EXPECT_EQ(r.detail(), "0 passed, 3 skipped");

  StepHarness one;
  r = one.Run(ExecStep(argv, {"fw_a", "ok"}));
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail();
  EXPECT_EQ(r.detail(), "1 passed, 1 skipped");
}

// Validates the reporter's verdicts on skips alone: a bare TAP "# SKIP" has no reason to give;
// nothing reported ran nothing; a sharded step's command and a re-run pass (the controller judges
// those), and a failure among skips is still FAIL.
TEST(TestReporterTest, SkipsAloneAndTheirReasons) {
  TestStepContext ctx;
  v1::TestStep step;
  step.set_suite("kselftest");
  auto summarize = [&](const v1::TestStep& s, std::vector<TestResult> results) {
    TestReporter reporter(s, "kselftest", "", ctx);
    for (TestResult& t : results) reporter.Report(std::move(t));
    v1::CommandResult r;
    reporter.Summarize(&r);
    return r;
  };
  const TestResult bare{"", "", "firmware:fw_run_tests.sh", TestStatus::kSkip, -1, "skip"};
  v1::CommandResult r = summarize(step, {bare});
  EXPECT_EQ(r.verdict(), v1::NOTHING_RAN);
  EXPECT_EQ(r.detail(),
            "nothing ran: 0 passed, 1 skipped (firmware:fw_run_tests.sh: no reason given, see "
            "the step's log); skips_ok: true in the step makes this a pass");

  r = summarize(step, {});
  EXPECT_EQ(r.verdict(), v1::NOTHING_RAN);
  EXPECT_EQ(r.detail(), "nothing ran: no test was reported");

  const TestResult why{"", "", "timers:t", TestStatus::kSkip, -1, std::string(300, 'x')};
  r = summarize(step, {why, bare});
  EXPECT_EQ(r.detail(),
            absl::StrCat("nothing ran: 0 passed, 2 skipped (timers:t: ", std::string(200, 'x'),
                         "...); skips_ok: true in the step makes this a pass"));

  v1::TestStep sharded = step;
  sharded.set_shard(2);
  EXPECT_EQ(summarize(sharded, {bare}).verdict(), v1::PASS);
  v1::TestStep rerun = step;
  rerun.set_run(2);
  EXPECT_EQ(summarize(rerun, {bare}).verdict(), v1::PASS);

  const TestResult failed{"", "", "size:get_size", TestStatus::kFail, -1, "exit 1"};
  r = summarize(step, {bare, failed});
  EXPECT_EQ(r.verdict(), v1::FAIL);
  EXPECT_EQ(r.detail(), "1 of 2 tests failed: size:get_size");
}

// Validates that each test's command sees its name in TEST_NAME.
TEST(ExecRunnerTest, TestNameInEnvironment) {
  StepHarness h;
  v1::CommandResult r = h.Run(ExecStep({"sh", "-c", "test \"$TEST_NAME\" = {test}"}, {"a", "b"}));
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail();
  EXPECT_THAT(Summary(h.results()), ElementsAre("TEST_PASS a", "TEST_PASS b"));
}

// Validates that without tests one run is one result, named by the section or argv[0].
TEST(ExecRunnerTest, SingleCommand) {
  StepHarness h;
  v1::CommandResult r = h.Run(ExecStep({"/bin/true"}, {}));
  EXPECT_EQ(r.verdict(), v1::PASS);
  EXPECT_THAT(Summary(h.results()), ElementsAre("TEST_PASS true"));
  StepHarness h2;
  v1::TestStep step = ExecStep({"false"}, {});
  step.set_section("smoke");
  r = h2.Run(step);
  EXPECT_EQ(r.verdict(), v1::FAIL);
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_THAT(Summary(h2.results()), ElementsAre("TEST_FAIL smoke"));
}

// Validates list_only: the tests are listed, nothing runs.
TEST(ExecRunnerTest, ListOnly) {
  StepHarness h;
  v1::TestStep step = ExecStep({"sh", "-c", "exit 1"}, {"a", "b"});
  step.set_list_only(true);
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS);
  EXPECT_THAT(r.listed_tests(), ElementsAre("a", "b"));
  EXPECT_THAT(h.results(), IsEmpty());
}

// Validates that a program that is not there is an infrastructure error, not a test failure.
TEST(ExecRunnerTest, MissingProgramIsInfraError) {
  StepHarness h;
  v1::CommandResult r = h.Run(ExecStep({"/nonexistent/kfleet-test"}, {"a", "b"}));
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), HasSubstr("install it on the host"));
  EXPECT_THAT(Summary(h.results()), ElementsAre("TEST_ERROR a"));
}

// Validates that a cancel ends the running test as an error and runs no further test.
TEST(ExecRunnerTest, CancelStopsTheRun) {
  StepHarness h;
  h.CancelWhenLogged("started a");
  v1::CommandResult r = h.Run(ExecStep({"sh", "-c", "echo started {test}; sleep 30"}, {"a", "b"}));
  EXPECT_TRUE(h.CancelledWhileRunning(r, {"TEST_ERROR a"}));
}

// Validates that an unknown suite is an infrastructure error naming the known ones.
TEST(TestRunnerTest, UnknownSuite) {
  StepHarness h;
  v1::TestStep step;
  step.set_suite("ltp");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), HasSubstr("kselftest, fstests, blktests, exec"));
}

v1::TestStep FstestsStep(std::vector<std::string> tests) {
  v1::TestStep step;
  step.set_suite("fstests");
  step.set_section("xfs_4k");
  v1::FstestsOptions* o = step.mutable_fstests();
  o->set_tree(kTestdata + "/fstests-tree");
  o->set_fstype("xfs");
  (*o->mutable_config())["TEST_DEV"] = "/dev/fake-test";
  (*o->mutable_config())["SCRATCH_DEV"] = "/dev/fake-scratch";
  (*o->mutable_config())["MKFS_OPTIONS"] = "-m crc=1";
  for (std::string& t : tests) step.add_tests(std::move(t));
  return step;
}

// Validates an fstests run: local.config's section, each test reported once as check prints it
// (the one check did not print comes from its summary and result.xml), expunged tests skipped,
// and result.xml, check.log and the failure's files uploaded.
TEST(FstestsRunnerTest, RunStreamsResults) {
  StepHarness h;
  FakeArtifactStore store;
  v1::TestStep step =
      FstestsStep({"generic/001", "generic/002", "generic/003", "generic/005", "generic/006"});
  step.mutable_fstests()->add_expunge("generic/006");
  v1::CommandResult r = h.Run(step, store.stub());
  std::vector<v1::TestResult> results = h.results();
  EXPECT_THAT(Summary(results),
              ElementsAre("TEST_PASS generic/001", "TEST_SKIP generic/002", "TEST_SKIP generic/006",
                          "TEST_PASS generic/005", "TEST_FAIL generic/003"))
      << h.log();
  EXPECT_THAT(Origins(results), Each("fstests xfs_4k"));
  EXPECT_EQ(results[0].duration_ms(), 1000);
  EXPECT_THAT(results[1].detail(), HasSubstr("SCRATCH_LOGDEV"));
  EXPECT_EQ(results[2].detail(), "expunged");
  // The failure waits for its time, which result.xml gives at the end.
  EXPECT_THAT(results[4].detail(), HasSubstr("output mismatch"));
  EXPECT_EQ(results[4].duration_ms(), 12000);
  EXPECT_EQ(r.verdict(), v1::FAIL);
  EXPECT_EQ(r.detail(), "1 of 5 tests failed: generic/003");
  EXPECT_THAT(
      Keys(store.uploads()),
      UnorderedElementsAre("run1+xfs_4k+result.xml", "run1+check.log",
                           "run1+xfs_4k+generic+003.out.bad", "run1+xfs_4k+generic+003.full"));
  absl::StatusOr<std::string> config = ReadFile(h.top() + "/work/local.config");
  ASSERT_TRUE(config.ok());
  EXPECT_THAT(*config, HasSubstr("[xfs_4k]\nFSTYP=xfs\n"));
  EXPECT_THAT(*config, HasSubstr("MKFS_OPTIONS=\"-m crc=1\"\n"));
  EXPECT_THAT(*config, HasSubstr(absl::StrCat("TEST_DIR=\"", h.top(), "/work/mnt/test\"")));
}

// Validates that without TEST_DEV and SCRATCH_DEV in the step, a guest's extra disks named test
// and scratch (pool disks, /dev/disk/by-id/virtio-NAME) are used, and the test file system is made
// anew on them.
TEST(FstestsRunnerTest, ExtraDisksAreTheDevices) {
  StepHarness h;
  ASSERT_TRUE(MakeDirs(h.top() + "/disks").ok());
  for (const char* name : {"virtio-test", "virtio-scratch"}) {
    ASSERT_TRUE(WriteFileAtomic(absl::StrCat(h.top(), "/disks/", name), "").ok());
  }
  v1::TestStep step = FstestsStep({"generic/001"});
  step.mutable_fstests()->mutable_config()->erase("TEST_DEV");
  step.mutable_fstests()->mutable_config()->erase("SCRATCH_DEV");
  // A stand-in for mkfs.xfs: the empty files are no block devices.
  ASSERT_TRUE(MakeDirs(h.top() + "/bin").ok());
  ASSERT_TRUE(WriteFileAtomic(h.top() + "/bin/mkfs.xfs", "#!/bin/sh\nexit 0\n").ok());
  ASSERT_EQ(::chmod((h.top() + "/bin/mkfs.xfs").c_str(), 0755), 0);
  (*step.mutable_env())["PATH"] = h.top() + "/bin:/usr/bin:/bin";
  h.Run(step);
  absl::StatusOr<std::string> config = ReadFile(h.top() + "/work/local.config");
  ASSERT_TRUE(config.ok()) << h.log();
  EXPECT_THAT(*config, HasSubstr(absl::StrCat("TEST_DEV=\"", h.top(), "/disks/virtio-test\"")));
  EXPECT_THAT(*config,
              HasSubstr(absl::StrCat("SCRATCH_DEV=\"", h.top(), "/disks/virtio-scratch\"")));
  EXPECT_THAT(*config, HasSubstr("RECREATE_TEST_DEV=\"true\""));
}

// Validates list_only: check -n lists the tests the step would run, without the expunged ones.
TEST(FstestsRunnerTest, ListOnly) {
  StepHarness h;
  v1::TestStep step = FstestsStep({});
  step.mutable_fstests()->add_expunge("generic/002");
  step.set_list_only(true);
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail();
  EXPECT_THAT(r.listed_tests(), ElementsAre("generic/001", "generic/003"));
  EXPECT_THAT(h.results(), IsEmpty());
}

// Validates that a tree without ./check is an infrastructure error that says what to point at.
TEST(FstestsRunnerTest, MissingTreeIsInfraError) {
  StepHarness h;
  v1::TestStep step = FstestsStep({});
  step.mutable_fstests()->set_tree(h.top());
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), HasSubstr("has no executable ./check"));
}

// Validates that a config value fstests cannot read is refused before anything runs.
TEST(FstestsRunnerTest, BadConfigValue) {
  StepHarness h;
  v1::TestStep step = FstestsStep({});
  (*step.mutable_fstests()->mutable_config())["MOUNT_OPTIONS"] = "-o \"x\"";
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), HasSubstr("MOUNT_OPTIONS"));
}

// Validates that a cancel while a test runs reports it as an error, once.
TEST(FstestsRunnerTest, CancelReportsRunningTestAsError) {
  StepHarness h;
  h.CancelWhenLogged("generic/004 1s");
  v1::CommandResult r = h.Run(FstestsStep({"generic/001", "generic/004"}));
  EXPECT_TRUE(h.CancelledWhileRunning(r, {"TEST_PASS generic/001", "TEST_ERROR generic/004"}));
}

// Validates that fstests.tree may be a git URL: cloned and built once, reused by the next step.
TEST(FstestsRunnerTest, GitUrlClonedOnce) {
  StepHarness h;
  const std::string repo = h.top() + "/repo";
  ASSERT_EQ(std::system(
                absl::StrCat("mkdir -p ", repo, " && cp ", kTestdata, "/fstests-tree/check ", repo,
                             " && printf 'all:\\n\\ttrue\\n' > ", repo, "/Makefile && cd ", repo,
                             " && git init -q && git add . && git -c user.name=t "
                             "-c user.email=t@t commit -qm fake")
                    .c_str()),
            0);
  v1::TestStep step = FstestsStep({"generic/001"});
  step.mutable_fstests()->set_tree("file://" + repo);
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail() << h.log();
  r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail();
  EXPECT_THAT(h.log(), HasSubstr("already built"));
}

v1::TestStep BlktestsStep(std::vector<std::string> devices, std::vector<std::string> tests) {
  v1::TestStep step;
  step.set_suite("blktests");
  step.set_section("nvme");
  step.mutable_blktests()->set_tree(kTestdata + "/blktests-tree");
  for (std::string& d : devices) step.mutable_blktests()->add_devices(std::move(d));
  for (std::string& t : tests) step.add_tests(std::move(t));
  return step;
}

// Validates a blktests run: each test once as check prints it, a failure's diff in its detail,
// a device test under its plain name when the step has one device, and the failure's files
// uploaded.
TEST(BlktestsRunnerTest, RunStreamsResults) {
  StepHarness h;
  FakeArtifactStore store;
  v1::TestStep step =
      BlktestsStep({"/dev/fakeA"}, {"block/001", "block/002", "block/010", "block/020"});
  (*step.mutable_blktests()->mutable_config())["QUICK_RUN"] = "1";
  v1::CommandResult r = h.Run(step, store.stub());
  std::vector<v1::TestResult> results = h.results();
  EXPECT_THAT(Summary(results), ElementsAre("TEST_PASS block/001", "TEST_FAIL block/002",
                                            "TEST_SKIP block/010", "TEST_PASS block/020"))
      << h.log();
  EXPECT_THAT(Origins(results), Each("blktests nvme"));
  EXPECT_EQ(results[0].duration_ms(), 100);
  EXPECT_THAT(results[1].detail(), HasSubstr("unexpected line"));
  EXPECT_THAT(results[2].detail(), HasSubstr("shared tags"));
  EXPECT_EQ(r.verdict(), v1::FAIL);
  EXPECT_THAT(Keys(store.uploads()),
              UnorderedElementsAre("nodev+block+002", "nodev+block+002.out.bad"));
  absl::StatusOr<std::string> config = ReadFile(h.top() + "/work/config");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(*config, "TEST_DEVS=( \"/dev/fakeA\" )\nQUICK_RUN=\"1\"\n");
}

// Validates that a test run on each of several devices is reported once per device.
TEST(BlktestsRunnerTest, OneResultPerDevice) {
  StepHarness h;
  v1::CommandResult r = h.Run(BlktestsStep({"/dev/fakeA", "/dev/fakeB"}, {"block/020"}));
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail();
  EXPECT_THAT(Summary(h.results()),
              ElementsAre("TEST_PASS block/020@fakeA", "TEST_PASS block/020@fakeB"));
}

// Validates list_only: a group expands to its tests, from the tree.
TEST(BlktestsRunnerTest, ListOnly) {
  StepHarness h;
  v1::TestStep step = BlktestsStep({}, {"block"});
  step.set_list_only(true);
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS);
  EXPECT_THAT(r.listed_tests(),
              ElementsAre("block/001", "block/002", "block/010", "block/020", "block/099"));
  EXPECT_THAT(h.results(), IsEmpty());
}

// Validates that a tree without ./check is an infrastructure error.
TEST(BlktestsRunnerTest, MissingTreeIsInfraError) {
  StepHarness h;
  v1::TestStep step = BlktestsStep({}, {});
  step.mutable_blktests()->set_tree(h.top());
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), HasSubstr("has no executable ./check"));
}

// Validates that a cancel while a test runs reports it as an error, once (stdout and the
// results directory both show it).
TEST(BlktestsRunnerTest, CancelReportsRunningTestAsError) {
  StepHarness h;
  h.CancelWhenLogged("block/099 (a slow test)");
  v1::CommandResult r = h.Run(BlktestsStep({}, {"block/001", "block/099"}));
  EXPECT_TRUE(h.CancelledWhileRunning(r, {"TEST_PASS block/001", "TEST_ERROR block/099"}));
}

}  // namespace
}  // namespace kfleet::agent

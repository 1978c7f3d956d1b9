// The fstests runner against stand-ins for check and mkfs: a TEST_DEV kfleet provides gets a file
// system before check runs, check's own error leads when it ran no test, a failed test keeps its
// time, and its detail names the stored files (named by run) instead of the work directory.
#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/suites/fake_artifact_store.h"
#include "agent/suites/loop_device.h"
#include "agent/suites/step_harness.h"
#include "agent/suites/suite_test_util.h"
#include "agent/suites/test_runner.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

const std::string kTestdata = KFLEET_SUITES_TESTDATA;

using testing_util::Keys;

void WriteScript(const std::string& path, const std::string& text) {
  ASSERT_TRUE(WriteFileAtomic(path, text).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
}

// An fstests step on the stand-in tree, with devices given unless `devices` is false.
v1::TestStep Step(std::vector<std::string> tests, bool devices = true) {
  v1::TestStep step;
  step.set_suite("fstests");
  step.set_section("xfs_4k");
  v1::FstestsOptions* o = step.mutable_fstests();
  o->set_tree(kTestdata + "/fstests-tree");
  o->set_fstype("xfs");
  if (devices) {
    (*o->mutable_config())["TEST_DEV"] = "/dev/fake-test";
    (*o->mutable_config())["SCRATCH_DEV"] = "/dev/fake-scratch";
  }
  for (std::string& t : tests) step.add_tests(std::move(t));
  return step;
}

// Guest disks named test and scratch (empty files) and a mkfs.xfs on the step's PATH that records
// its arguments in <top>/mkfs.args and exits `status` after printing `says` to stderr.
void FakeDisksAndMkfs(StepHarness& h, v1::TestStep& step, int status = 0,
                      const std::string& says = "") {
  ASSERT_TRUE(MakeDirs(h.top() + "/disks").ok());
  ASSERT_TRUE(MakeDirs(h.top() + "/bin").ok());
  for (const char* name : {"virtio-test", "virtio-scratch"}) {
    ASSERT_TRUE(WriteFileAtomic(absl::StrCat(h.top(), "/disks/", name), "").ok());
  }
  WriteScript(h.top() + "/bin/mkfs.xfs",
              absl::StrCat("#!/bin/sh\necho \"$@\" >> ", h.top(), "/mkfs.args\necho '", says,
                           "' >&2\nexit ", status, "\n"));
  (*step.mutable_env())["PATH"] = h.top() + "/bin:/usr/bin:/bin";
}

// Validates the mkfs command for each kind of file system: the flag that overwrites without
// asking, xfs when none is named, and a refusal of a name that is no program name.
TEST(MkfsArgvTest, OverwritesWithoutAsking) {
  EXPECT_THAT(*MkfsArgv("xfs", "/dev/loop3"), ElementsAre("mkfs.xfs", "-f", "-q", "/dev/loop3"));
  EXPECT_THAT(*MkfsArgv("", "/dev/loop3"), ElementsAre("mkfs.xfs", "-f", "-q", "/dev/loop3"));
  EXPECT_THAT(*MkfsArgv("ext4", "/dev/vdb"), ElementsAre("mkfs.ext4", "-F", "-q", "/dev/vdb"));
  EXPECT_THAT(*MkfsArgv("btrfs", "/dev/vdb"), ElementsAre("mkfs.btrfs", "-f", "-q", "/dev/vdb"));
  EXPECT_THAT(*MkfsArgv("udf", "/dev/vdb"), ElementsAre("mkfs.udf", "/dev/vdb"));
  EXPECT_FALSE(MkfsArgv("../x", "/dev/vdb").ok());
}

// Validates that a TEST_DEV kfleet provides (here a guest's extra disk) gets a new file system of
// the step's type before check runs, and that check then runs.
TEST(FstestsRunnerTest, ProvidedTestDevIsMadeBeforeCheck) {
  StepHarness h;
  v1::TestStep step = Step({"generic/001"}, /*devices=*/false);
  FakeDisksAndMkfs(h, step);
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::PASS) << r.detail() << h.log();
  absl::StatusOr<std::string> args = ReadFile(h.top() + "/mkfs.args");
  ASSERT_TRUE(args.ok()) << h.log();
  EXPECT_EQ(*args, absl::StrCat("-f -q ", h.top(), "/disks/virtio-test\n"));
  EXPECT_THAT(Summary(h.results()), ElementsAre("TEST_PASS generic/001"));
}

// Validates that a TEST_DEV the user gives is left as it is: no mkfs.
TEST(FstestsRunnerTest, GivenTestDevIsNotMade) {
  StepHarness h;
  v1::TestStep step = Step({"generic/001"});
  FakeDisksAndMkfs(h, step);
  EXPECT_EQ(h.Run(step).verdict(), v1::PASS);
  EXPECT_FALSE(ReadFile(h.top() + "/mkfs.args").ok());
}

// Validates that a failed mkfs stops the step before check with an error naming the device, what
// mkfs said, and the fix.
TEST(FstestsRunnerTest, FailedMkfsNamesTheDevice) {
  StepHarness h;
  v1::TestStep step = Step({"generic/001"}, /*devices=*/false);
  FakeDisksAndMkfs(h, step, 1, "mkfs.xfs: cannot open: Device or resource busy");
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), StartsWith(absl::StrCat("mkfs of TEST_DEV ", h.top())));
  EXPECT_THAT(r.detail(), HasSubstr("Device or resource busy"));
  EXPECT_THAT(r.detail(), HasSubstr("xfsprogs"));
  EXPECT_TRUE(h.results().empty());
}

// Validates that when check stops before its first test, its own words (stdout and stderr) lead
// the step's detail, and nothing claims that result.xml is missing for want of -R xunit.
TEST(FstestsRunnerTest, CheckErrorComesFirst) {
  StepHarness h;
  const std::string tree = h.top() + "/tree";
  ASSERT_TRUE(MakeDirs(tree).ok());
  WriteScript(tree + "/check",
              "#!/bin/sh\n"
              "echo 'common/rc: could not mount /dev/loop2 on /work/mnt/test'\n"
              "echo 'mount: /work/mnt/test: wrong fs type, bad option, bad superblock on "
              "/dev/loop2' >&2\n"
              "exit 1\n");
  v1::TestStep step = Step({"generic/001"});
  step.mutable_fstests()->set_tree(tree);
  v1::CommandResult r = h.Run(step);
  EXPECT_EQ(r.verdict(), v1::INFRA_ERROR);
  EXPECT_THAT(r.detail(), StartsWith("fstests check stopped before its first test"));
  size_t cause = r.detail().find("could not mount /dev/loop2");
  ASSERT_NE(cause, std::string::npos) << r.detail();
  EXPECT_LT(cause, r.detail().find("wrong fs type"));
  EXPECT_THAT(r.detail(), Not(HasSubstr("groups, tests and expunge list")));
  EXPECT_THAT(r.detail() + h.log(), Not(HasSubstr("-R xunit)")));
}

// Validates that a check that ends well without a test says to look at the choice of tests.
TEST(FstestsRunnerTest, NoTestChosenNamesTheList) {
  StepHarness h;
  const std::string tree = h.top() + "/tree";
  ASSERT_TRUE(MakeDirs(tree).ok());
  WriteScript(tree + "/check", "#!/bin/sh\necho 'SECTION       -- xfs_4k'\nexit 0\n");
  v1::TestStep step = Step({});
  step.mutable_fstests()->set_tree(tree);
  v1::CommandResult r = h.Run(step);
  EXPECT_NE(r.verdict(), v1::PASS);
  EXPECT_THAT(r.detail(), StartsWith("fstests ran no test: check the groups, tests and expunge"));
}

// Validates that a failed test keeps the time result.xml gives it (check prints none), and that
// its detail names the stored .out.bad and the command that fetches it, not the work directory.
TEST(FstestsRunnerTest, FailureKeepsTimeAndNamesArtifacts) {
  StepHarness h;
  FakeArtifactStore store;
  v1::CommandResult r = h.Run(Step({"generic/001", "generic/003"}), store.stub());
  std::vector<v1::TestResult> results = h.results();
  ASSERT_THAT(Summary(results), ElementsAre("TEST_PASS generic/001", "TEST_FAIL generic/003"));
  EXPECT_EQ(results[1].duration_ms(), 12000);
  EXPECT_THAT(results[1].detail(),
              HasSubstr("(see artifact run1+xfs_4k+generic+003.out.bad: kctl artifacts get c-1 "
                        "run1+xfs_4k+generic+003.out.bad)"));
  EXPECT_THAT(results[1].detail(), HasSubstr("+++ run1+xfs_4k+generic+003.out.bad"));
  EXPECT_THAT(results[1].detail(), Not(HasSubstr(h.top())));
  EXPECT_EQ(store.uploads().count("run1+xfs_4k+generic+003.out.bad"), 1u);
  EXPECT_EQ(r.verdict(), v1::FAIL);
}

// Validates that a re-run's files carry its run, and check.log is stored once per command.
TEST(FstestsRunnerTest, RerunFilesCarryTheRun) {
  StepHarness h;
  FakeArtifactStore store;
  v1::TestStep step = Step({"generic/003"});
  step.set_run(2);
  h.Run(step, store.stub());
  EXPECT_THAT(
      Keys(store.uploads()),
      UnorderedElementsAre("run2+xfs_4k+result.xml", "run2+check.log",
                           "run2+xfs_4k+generic+003.out.bad", "run2+xfs_4k+generic+003.full"));
  ASSERT_EQ(h.results().size(), 1u);
  EXPECT_THAT(h.results()[0].detail(), HasSubstr("kctl artifacts get c-1 run2+"));
}

}  // namespace
}  // namespace kfleet::agent

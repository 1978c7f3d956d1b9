#include "agent/kernel/kernel_steps.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agent/suites/fake_artifact_store.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A kernel tree with every make target kfleet-kernel.sh runs, each done in moments. Its
// olddefconfig drops WANTED (as if a dependency were unmet) and FAKE_TYPO (as if no Kconfig file
// defined it).
constexpr char kFakeKernelMakefile[] =
    "O ?= .\n"
    ".PHONY: all tinyconfig olddefconfig image_name headers_install\n"
    "all:\n"
    "\tmkdir -p $(O)/include/config $(O)/arch/x86/boot\n"
    "\techo 6.1.0-fake > $(O)/include/config/kernel.release\n"
    "\techo image > $(O)/arch/x86/boot/bzImage\n"
    "\techo 'ffffffff81000000 T _text' > $(O)/System.map\n"
    "tinyconfig:\n"
    "\tprintf 'CONFIG_FAKE=y\\n' > $(O)/.config\n"
    "olddefconfig:\n"
    "\tsed -i -e '/^CONFIG_WANTED=/d' -e '/^CONFIG_FAKE_TYPO=/d' $(O)/.config\n"
    "image_name:\n"
    "\t@echo arch/x86/boot/bzImage\n"
    "headers_install:\n"
    "\tmkdir -p $(O)/usr/include/linux\n"
    "\techo '#define FAKE_UAPI 1' > $(O)/usr/include/linux/fake.h\n";

// Fake kselftests with the variables of the real Makefile the script sets (O, BUILD, TARGETS,
// INSTALL_PATH): each target's Makefile makes OUTPUT/prog, after the uapi headers are there.
constexpr char kFakeSelftestsMakefile[] =
    "BUILD ?= $(O)/kselftest\n"
    "all:\n"
    "\t@test -f $(O)/usr/include/linux/fake.h || { echo 'no uapi headers' >&2; exit 1; }\n"
    "\t@set -e; for t in $(TARGETS); do $(MAKE) -s -C $$t OUTPUT=$(BUILD)/$$t; done\n"
    "install: all\n"
    "\t@mkdir -p $(INSTALL_PATH)/kselftest\n"
    "\t@printf '#!/bin/sh\\necho \"TAP version 13\"\\n' > $(INSTALL_PATH)/run_kselftest.sh\n"
    "\t@: > $(INSTALL_PATH)/kselftest-list.txt\n"
    "\t@for t in $(TARGETS); do mkdir -p $(INSTALL_PATH)/$$t; cp $(BUILD)/$$t/prog "
    "$(INSTALL_PATH)/$$t/; echo \"$$t:prog\" >> $(INSTALL_PATH)/kselftest-list.txt; done\n";

// merge_config.sh -m -O DIR BASE FRAGMENT...: the fragments appended to BASE.
constexpr char kFakeMergeConfig[] =
    "#!/bin/sh\n"
    "shift 3\n"
    "base=$1\n"
    "shift\n"
    "cat \"$@\" >> \"$base\"\n";

// WANTED, which the fake olddefconfig drops: inside `if TESTING_MENU`, depending on FAKE, and
// selected by SELECTOR (in another file).
constexpr char kFakeKconfigDebug[] =
    "menu \"Kernel hacking\"\n"
    "menuconfig TESTING_MENU\n"
    "\tbool \"Runtime testing\"\n"
    "if TESTING_MENU\n"
    "config WANTED\n"
    "\ttristate \"Wanted test module\"\n"
    "\tdepends on FAKE\n"
    "\thelp\n"
    "\t  depends on NOT_A_DEPENDENCY (help text)\n"
    "endif # TESTING_MENU\n"
    "endmenu\n";
constexpr char kFakeKconfigDrivers[] =
    "config SELECTOR\n"
    "\tbool \"Selects WANTED\"\n"
    "\tselect WANTED if FAKE\n";

constexpr char kFakeTargetMakefile[] =
    "all:\n"
    "\tmkdir -p $(OUTPUT)\n"
    "\tprintf '#!/bin/sh\\necho ok\\n' > $(OUTPUT)/prog\n";

constexpr char kBrokenTargetMakefile[] =
    "all:\n"
    "\t@echo \"broken.c:3:1: error: expected ';' before '}' token\" >&2; exit 1\n";

class CollectingSink : public OutputSink {
 public:
  void Write(v1::LogStream, absl::string_view data) override {
    absl::MutexLock lock(&mu_);
    absl::StrAppend(&text_, data);
  }
  std::string text() const {
    absl::MutexLock lock(&mu_);
    return text_;
  }

 private:
  mutable absl::Mutex mu_;
  std::string text_ ABSL_GUARDED_BY(mu_);
};

class KernelBuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kernel_steps_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  void Write(const std::string& path, const std::string& text) {
    ASSERT_TRUE(MakeDirs(std::filesystem::path(path).parent_path().string()).ok());
    ASSERT_TRUE(WriteFileAtomic(path, text).ok()) << path;
  }

  // The fake kernel tree, with kselftest targets alpha, beta and broken.
  std::string FakeTree() {
    std::string tree = root_ + "/linux";
    Write(tree + "/Makefile", kFakeKernelMakefile);
    Write(tree + "/arch/x86/Kconfig", "");
    Write(tree + "/scripts/kconfig/Makefile", "");
    Write(tree + "/scripts/kconfig/merge_config.sh", kFakeMergeConfig);
    EXPECT_EQ(::chmod((tree + "/scripts/kconfig/merge_config.sh").c_str(), 0755), 0);
    Write(tree + "/lib/Kconfig.debug", kFakeKconfigDebug);
    Write(tree + "/drivers/Kconfig", kFakeKconfigDrivers);
    std::string sel = tree + "/tools/testing/selftests";
    Write(sel + "/Makefile", kFakeSelftestsMakefile);
    Write(sel + "/alpha/Makefile", kFakeTargetMakefile);
    Write(sel + "/beta/Makefile", kFakeTargetMakefile);
    Write(sel + "/broken/Makefile", kBrokenTargetMakefile);
    return tree;
  }

  v1::KernelBuildStep Step(const std::string& tree, std::vector<std::string> targets) {
    v1::KernelBuildStep step;
    step.mutable_source()->set_tree(tree);
    step.mutable_source()->set_config("tinyconfig");
    step.mutable_source()->set_jobs(1);
    for (std::string& t : targets) step.add_kselftest_targets(std::move(t));
    return step;
  }

  // Runs the step as command `id` in work directory `work` (one per builder); the phases it ran
  // are in phases_.
  v1::CommandResult Build(const v1::KernelBuildStep& step, const std::string& id,
                          const std::string& work = "work") {
    phases_.clear();
    KernelStepContext ctx;
    ctx.command_id = id;
    ctx.work_dir = root_ + "/" + work;
    ctx.artifacts = store_.stub();
    ctx.log = &log_;
    ctx.host_name = "builder-1";
    ctx.run_phase = [this](const RunSpec& spec) {
      phases_.push_back(spec.argv.at(1));
      absl::StatusOr<std::unique_ptr<Process>> p = Process::Start(spec, &log_);
      if (!p.ok()) {
        v1::CommandResult r;
        r.set_verdict(v1::INFRA_ERROR);
        r.set_detail(std::string(p.status().message()));
        return r;
      }
      return (*p)->Wait();
    };
    return RunKernelBuild(step, ctx);
  }

  static std::vector<v1::Artifact> OfKind(const v1::CommandResult& r, const std::string& kind) {
    std::vector<v1::Artifact> out;
    for (const v1::Artifact& a : r.kernel().artifacts()) {
      if (a.kind() == kind) out.push_back(a);
    }
    return out;
  }

  // The member names of a gzip tar blob, as `tar -tzf` lists them.
  std::string ListArchive(const std::string& blob) {
    std::string path = root_ + "/listed.tar.gz";
    EXPECT_TRUE(WriteFileAtomic(path, blob).ok());
    RunSpec spec;
    spec.argv = {"tar", "-tzf", path};
    CollectingSink out;
    absl::StatusOr<std::unique_ptr<Process>> p = Process::Start(spec, &out);
    EXPECT_TRUE(p.ok());
    EXPECT_EQ((*p)->Wait().verdict(), v1::PASS) << out.text();
    return out.text();
  }

  std::string root_;
  FakeArtifactStore store_;
  CollectingSink log_;
  std::vector<std::string> phases_;
};

// Validates that the archive name depends on the set of targets only: order and repeats do not
// change it, another set does.
TEST(KselftestArchiveNameTest, NamesTheSetOfTargets) {
  std::string name = KselftestArchiveName({"size", "mincore"});
  EXPECT_THAT(name, ::testing::MatchesRegex("kselftest-[0-9a-f]{8}\\.tar\\.gz"));
  EXPECT_EQ(KselftestArchiveName({"mincore", "size", "size"}), name);
  EXPECT_NE(KselftestArchiveName({"size"}), name);
  EXPECT_NE(KselftestArchiveName({"size", "mincore", "timers"}), name);
}

// Validates that targets are sorted and deduplicated, and that names that are not a directory
// under tools/testing/selftests are refused with the name in the message.
TEST(KselftestTargetsTest, NormalizesAndRefusesBadNames) {
  google::protobuf::RepeatedPtrField<std::string> in;
  for (const char* t : {"size", "net/mptcp", "mincore", "size"}) *in.Add() = t;
  absl::StatusOr<std::vector<std::string>> got = NormalizeKselftestTargets(in);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre("mincore", "net/mptcp", "size"));
  for (const char* bad : {"", "../size", "/size", "net//mptcp", "a b", "x;rm", "net/"}) {
    google::protobuf::RepeatedPtrField<std::string> one;
    *one.Add() = bad;
    absl::StatusOr<std::vector<std::string>> r = NormalizeKselftestTargets(one);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// Validates that a build with kselftest targets stores the kernel and one kselftest archive
// (run_kselftest.sh, the list, a directory per target at its top), and that a second build of
// the same identity and targets, on another builder, runs neither make nor the kselftest build
// and hands back the same archive.
TEST_F(KernelBuildTest, BuildsKselftestsOnceAndReusesThem) {
  std::string tree = FakeTree();
  v1::CommandResult first = Build(Step(tree, {"beta", "alpha"}), "c-1");
  ASSERT_EQ(first.verdict(), v1::PASS) << first.detail() << "\n" << log_.text();
  EXPECT_THAT(phases_, ElementsAre("prepare", "make", "kselftest"));
  EXPECT_FALSE(first.kernel().reused());
  EXPECT_THAT(first.detail(), HasSubstr("kselftests alpha beta built"));
  std::vector<v1::Artifact> ks = OfKind(first, kKselftestKind);
  ASSERT_EQ(ks.size(), 1u);
  EXPECT_EQ(ks[0].name(), KselftestArchiveName({"alpha", "beta"}));
  EXPECT_EQ(OfKind(first, "kernel").size(), 1u);
  std::string listing = ListArchive(store_.blob(ks[0].sha256()));
  EXPECT_THAT(listing, HasSubstr("./run_kselftest.sh\n"));
  EXPECT_THAT(listing, HasSubstr("./kselftest-list.txt\n"));
  EXPECT_THAT(listing, HasSubstr("./alpha/prog\n"));
  EXPECT_THAT(listing, HasSubstr("./beta/prog\n"));
  store_.RecordBuild(first.kernel());

  v1::CommandResult second = Build(Step(tree, {"alpha", "beta"}), "c-2", "work-2");
  ASSERT_EQ(second.verdict(), v1::PASS) << second.detail() << "\n" << log_.text();
  EXPECT_THAT(phases_, ElementsAre("prepare"));
  EXPECT_TRUE(second.kernel().reused());
  EXPECT_THAT(second.detail(), HasSubstr("kselftests alpha beta reused"));
  std::vector<v1::Artifact> ks2 = OfKind(second, kKselftestKind);
  ASSERT_EQ(ks2.size(), 1u);
  EXPECT_EQ(ks2[0].sha256(), ks[0].sha256());
  EXPECT_EQ(store_.data_uploads(ks[0].name()), 1);
}

// Validates that a stored kernel asked for other targets builds only the kselftests (no kernel
// make), stores them under the new set's name, and hands back only that archive; the stored
// build then holds both, and the first set is still found.
TEST_F(KernelBuildTest, ReusedKernelWithNewTargetsBuildsOnlyKselftests) {
  std::string tree = FakeTree();
  v1::CommandResult first = Build(Step(tree, {"alpha"}), "c-1");
  ASSERT_EQ(first.verdict(), v1::PASS) << first.detail() << "\n" << log_.text();
  store_.RecordBuild(first.kernel());

  v1::CommandResult second = Build(Step(tree, {"alpha", "beta"}), "c-2");
  ASSERT_EQ(second.verdict(), v1::PASS) << second.detail() << "\n" << log_.text();
  EXPECT_THAT(phases_, ElementsAre("prepare", "kselftest"));
  EXPECT_TRUE(second.kernel().reused());
  std::vector<v1::Artifact> ks = OfKind(second, kKselftestKind);
  ASSERT_EQ(ks.size(), 1u);
  EXPECT_EQ(ks[0].name(), KselftestArchiveName({"alpha", "beta"}));
  EXPECT_NE(ks[0].name(), KselftestArchiveName({"alpha"}));
  EXPECT_EQ(OfKind(second, "kernel").size(), 1u);
  store_.RecordBuild(second.kernel());

  v1::CommandResult third = Build(Step(tree, {"alpha"}), "c-3");
  ASSERT_EQ(third.verdict(), v1::PASS) << third.detail();
  EXPECT_THAT(phases_, ElementsAre("prepare"));
  std::vector<v1::Artifact> ks3 = OfKind(third, kKselftestKind);
  ASSERT_EQ(ks3.size(), 1u);
  EXPECT_EQ(ks3[0].name(), KselftestArchiveName({"alpha"}));

  // Without targets, the result carries the kernel only.
  v1::CommandResult plain = Build(Step(tree, {}), "c-4");
  ASSERT_EQ(plain.verdict(), v1::PASS) << plain.detail();
  EXPECT_TRUE(OfKind(plain, kKselftestKind).empty());
}

// Validates that a target that does not build fails the step, naming the target and quoting
// the compiler's error line.
TEST_F(KernelBuildTest, KselftestBuildFailureNamesTheTarget) {
  std::string tree = FakeTree();
  v1::CommandResult r = Build(Step(tree, {"alpha", "broken"}), "c-1");
  EXPECT_EQ(r.verdict(), v1::FAIL);
  EXPECT_THAT(r.detail(), HasSubstr("kselftest target broken failed to build"));
  EXPECT_THAT(r.detail(), HasSubstr("broken.c:3:1: error: expected ';'"));
  EXPECT_FALSE(r.has_kernel());
}

// Validates that a target the tree does not have, and a malformed one, fail the step before
// anything is built.
TEST_F(KernelBuildTest, UnknownOrBadTargetFails) {
  std::string tree = FakeTree();
  v1::CommandResult missing = Build(Step(tree, {"nosuch"}), "c-1");
  EXPECT_EQ(missing.verdict(), v1::FAIL);
  EXPECT_THAT(missing.detail(), HasSubstr("kselftest target \"nosuch\" is not in"));

  v1::CommandResult bad = Build(Step(tree, {"../../etc"}), "c-2");
  EXPECT_EQ(bad.verdict(), v1::FAIL);
  EXPECT_THAT(bad.detail(), HasSubstr("../../etc"));
  EXPECT_TRUE(phases_.empty());
}

// Validates that an option a fragment asks for and the final .config lacks fails the build at
// its config, before make, with the option, the values asked and got, and the Kconfig lines that
// decide it (the enclosing `if`, its `depends on`, who selects it), each symbol with its value.
TEST_F(KernelBuildTest, FragmentOptionDroppedByOlddefconfigFails) {
  std::string tree = FakeTree();
  std::string fragment = root_ + "/wanted.config";
  Write(fragment, "CONFIG_FAKE=y\nCONFIG_WANTED=y\n# CONFIG_ABSENT is not set\n");
  v1::KernelBuildStep step = Step(tree, {});
  step.mutable_source()->set_config("tinyconfig+" + fragment);
  v1::CommandResult r = Build(step, "c-1");
  EXPECT_EQ(r.verdict(), v1::FAIL);
  EXPECT_THAT(phases_, ElementsAre("prepare"));
  EXPECT_FALSE(r.has_kernel());
  EXPECT_EQ(r.detail(),
            "kernel.config: 1 option a fragment asks for has another value in the final .config "
            "(olddefconfig drops, without a word, an option whose dependencies are not met): add "
            "its dependencies to a fragment, or drop it\n"
            "  CONFIG_WANTED: asked y (wanted.config), got n (not in .config)\n"
            "    lib/Kconfig.debug:5: config WANTED\n"
            "    lib/Kconfig.debug:4: inside if TESTING_MENU   [TESTING_MENU=n]\n"
            "    lib/Kconfig.debug:7: depends on FAKE   [FAKE=y]\n"
            "    drivers/Kconfig:3: selected by SELECTOR   [SELECTOR=n] if FAKE   [FAKE=y]");
  // The build log says it too.
  EXPECT_THAT(log_.text(), HasSubstr("CONFIG_WANTED: asked y (wanted.config), got n"));
}

// Validates that fragments whose options all hold in the final .config pass the check ("is not
// set" and an absent option both count as n), and that an option no Kconfig file defines is
// named as such.
TEST_F(KernelBuildTest, FragmentCheckPassesWhatHoldsAndNamesUnknownOptions) {
  std::string tree = FakeTree();
  std::string fragment = root_ + "/ok.config";
  Write(fragment, "CONFIG_FAKE=y\n# CONFIG_ABSENT is not set\n");
  v1::KernelBuildStep step = Step(tree, {});
  step.mutable_source()->set_config("tinyconfig+" + fragment);
  v1::CommandResult ok = Build(step, "c-1");
  EXPECT_EQ(ok.verdict(), v1::PASS) << ok.detail();
  EXPECT_THAT(log_.text(), HasSubstr("every option the fragments ask for is in .config"));

  std::string typo = root_ + "/typo.config";
  Write(typo, "CONFIG_FAKE_TYPO=m\n");
  step.mutable_source()->set_config("tinyconfig+" + fragment + "+" + typo);
  v1::CommandResult bad = Build(step, "c-2");
  EXPECT_EQ(bad.verdict(), v1::FAIL);
  EXPECT_THAT(bad.detail(), HasSubstr("  CONFIG_FAKE_TYPO: asked m (typo.config), got n (not in "
                                      ".config)\n    no Kconfig file of the tree defines it"));
}

// A clean kernel tree to run the slow tests against: KFLEET_REAL_KERNEL_TREE, else the one
// scripts/lib.sh kfleet_kernel_source unpacks, if it is there; "" if neither.
std::string RealTree() {
  const char* tree = getenv("KFLEET_REAL_KERNEL_TREE");
  std::string path = tree != nullptr && *tree != '\0' ? tree : "/var/cache/kfleet/linux-source-6.1";
  if (::access((path + "/scripts/kconfig/merge_config.sh").c_str(), X_OK) != 0) return "";
  return path;
}

// Validates on Debian's linux-source-6.1, config only (the kernel is served as stored, so make
// never runs): tinyconfig+kfleet-guest plus a fragment asking CONFIG_TEST_FIRMWARE=y fails,
// naming the `if RUNTIME_TESTING_MENU` that tinyconfig leaves off; with RUNTIME_TESTING_MENU=y
// added, the same config passes.
TEST_F(KernelBuildTest, RealTreeReportsUnmetDependency) {
  std::string tree = RealTree();
  if (tree.empty()) {
    GTEST_SKIP() << "no kernel tree: set KFLEET_REAL_KERNEL_TREE (scripts/lib.sh "
                    "kfleet_kernel_source unpacks one into /var/cache/kfleet/linux-source-6.1)";
  }
  v1::KernelBuild stored;
  stored.set_release("6.1.0-stored");
  v1::Artifact* kernel = stored.add_artifacts();
  kernel->set_name("vmlinuz");
  kernel->set_kind("kernel");
  store_.ServeAnyIdentity(stored);
  std::string fw = root_ + "/fw.config";
  Write(fw, "CONFIG_TEST_FIRMWARE=y\nCONFIG_FW_LOADER=y\nCONFIG_FW_LOADER_USER_HELPER=y\n");
  v1::KernelBuildStep step = Step(tree, {});
  step.mutable_source()->set_config("tinyconfig+kfleet-guest+" + fw);
  v1::CommandResult r = Build(step, "c-1");
  EXPECT_EQ(r.verdict(), v1::FAIL) << log_.text();
  EXPECT_THAT(phases_, ElementsAre("prepare"));
  EXPECT_THAT(r.detail(), HasSubstr("1 option a fragment asks for has another value"));
  EXPECT_THAT(r.detail(),
              HasSubstr("  CONFIG_TEST_FIRMWARE: asked y (fw.config), got n (not in .config)\n"));
  EXPECT_THAT(r.detail(),
              ::testing::ContainsRegex("lib/Kconfig.debug:[0-9]+: inside if RUNTIME_TESTING_MENU   "
                                       "\\[RUNTIME_TESTING_MENU=n\\]"));
  EXPECT_THAT(r.detail(),
              ::testing::ContainsRegex(
                  "lib/Kconfig.debug:[0-9]+: depends on FW_LOADER   \\[FW_LOADER=y\\]"));

  Write(fw,
        "CONFIG_RUNTIME_TESTING_MENU=y\nCONFIG_TEST_FIRMWARE=y\nCONFIG_FW_LOADER=y\n"
        "CONFIG_FW_LOADER_USER_HELPER=y\n");
  v1::CommandResult fixed = Build(step, "c-2");
  EXPECT_EQ(fixed.verdict(), v1::PASS) << fixed.detail() << "\n" << log_.text();
  EXPECT_THAT(phases_, ElementsAre("prepare"));
}

// Validates, against the real selftests of Debian's linux-source-6.1 (with the kernel served as
// stored, so no kernel make), that `size` builds and installs into an archive busybox tar
// unpacks, with size:get_size in its list. Slow (headers_install and kconfig on the real tree:
// minutes), so it runs only when KFLEET_REAL_KERNEL_TREE names the tree.
TEST_F(KernelBuildTest, RealTreeBuildsSize) {
  const char* tree = getenv("KFLEET_REAL_KERNEL_TREE");
  if (tree == nullptr || *tree == '\0') {
    GTEST_SKIP() << "set KFLEET_REAL_KERNEL_TREE=/var/cache/kfleet/linux-source-6.1 (a clean "
                    "kernel tree; scripts/lib.sh kfleet_kernel_source unpacks it) to run it";
  }
  if (::access((std::string(tree) + "/tools/testing/selftests/size/Makefile").c_str(), R_OK) != 0) {
    GTEST_SKIP() << tree << " has no tools/testing/selftests/size: not a kernel tree";
  }
  v1::KernelBuild stored;
  stored.set_release("6.1.0-stored");
  v1::Artifact* kernel = stored.add_artifacts();
  kernel->set_name("vmlinuz");
  kernel->set_kind("kernel");
  store_.ServeAnyIdentity(stored);
  v1::KernelBuildStep step = Step(tree, {"size"});
  step.mutable_source()->set_jobs(2);
  v1::CommandResult r = Build(step, "c-1");
  ASSERT_EQ(r.verdict(), v1::PASS) << r.detail() << "\n" << log_.text();
  EXPECT_THAT(phases_, ElementsAre("prepare", "kselftest"));
  std::vector<v1::Artifact> ks = OfKind(r, kKselftestKind);
  ASSERT_EQ(ks.size(), 1u);

  std::string unpacked = root_ + "/unpacked";
  ASSERT_TRUE(MakeDirs(unpacked).ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/ks.tar.gz", store_.blob(ks[0].sha256())).ok());
  RunSpec spec;
  spec.argv = {"busybox", "tar", "-xzf", root_ + "/ks.tar.gz", "-C", unpacked};
  if (::access("/bin/busybox", X_OK) != 0) spec.argv.erase(spec.argv.begin());
  CollectingSink out;
  absl::StatusOr<std::unique_ptr<Process>> p = Process::Start(spec, &out);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ((*p)->Wait().verdict(), v1::PASS) << out.text();
  EXPECT_EQ(::access((unpacked + "/size/get_size").c_str(), X_OK), 0);
  EXPECT_EQ(::access((unpacked + "/run_kselftest.sh").c_str(), X_OK), 0);
  absl::StatusOr<std::string> list = ReadFile(unpacked + "/kselftest-list.txt");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, "size:get_size\n");
}

}  // namespace
}  // namespace kfleet::agent

// Build-once jobs in the store: the kernel_build command on the builder, the targets' steps after
// it with the build filled in, skipped steps when it fails, and the reboot that verifies the
// kernel that came up.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "controller/store/sqlite_store.h"
#include "controller/store/step_fill.h"

namespace kfleet::controller {
namespace {

class KernelJobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-kjobs-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto store = SqliteStore::Open(dir_ + "/kfleet.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void Register(const std::string& id, const std::string& name, const std::string& boot_loader,
                const std::string& boot_id = "b1", const std::string& release = "6.1.0-1-amd64",
                const std::string& version = "Linux version 6.1.0-1-amd64 (debian@...)") {
    v1::Hello hello;
    hello.set_host_id(id);
    hello.set_name(name);
    hello.set_boot_id(boot_id);
    hello.mutable_facts()->set_boot_loader(boot_loader);
    hello.mutable_facts()->set_kernel_release(release);
    hello.mutable_facts()->set_kernel_version(version);
    (*hello.mutable_labels())["pool"] = "local";
    ASSERT_TRUE(store_->RegisterHost(hello, 1000).ok());
  }

  static v1::JobSpec BootSpec() {
    v1::JobSpec spec;
    spec.set_name("boot");
    spec.mutable_hosts()->add_names("g1");
    spec.mutable_kernel()->set_tree("/src/linux");
    spec.add_steps()->mutable_kernel_build();
    spec.add_steps()->mutable_kernel_install();
    spec.add_steps()->mutable_reboot();
    return spec;
  }

  static v1::KernelBuild Build() {
    v1::KernelBuild b;
    b.set_identity(std::string(64, 'a'));
    b.set_release("6.1.158-kf");
    v1::Artifact* a = b.add_artifacts();
    a->set_name("vmlinuz");
    a->set_kind("kernel");
    a->set_sha256(std::string(64, 'b'));
    return b;
  }

  ApplyOutcome Finish(const std::string& host, uint64_t seq, const std::string& cmd,
                      v1::Verdict verdict, const v1::KernelBuild* build = nullptr) {
    v1::SequencedItem item;
    item.set_seq(seq);
    item.mutable_finished()->set_command_id(cmd);
    item.mutable_finished()->mutable_result()->set_verdict(verdict);
    if (build) *item.mutable_finished()->mutable_result()->mutable_kernel() = *build;
    auto out = store_->ApplySequenced(host, {item}, 2000);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : ApplyOutcome();
  }

  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
};

// Validates that a build-once job runs kernel_build on the builder only, then the install on the
// target with the build, through the provider on a direct-boot guest, and that the reboot after
// it expects the build's release and identity.
TEST_F(KernelJobsTest, BuildThenInstallOnTargetsWithTheBuild) {
  Register("h-b", "builder", "");
  Register("h-g", "g1", "direct");
  auto created = store_->CreateJob(BootSpec(), {"h-g"}, "t", 10, "h-b");
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_EQ(created->second.size(), 1u);
  EXPECT_EQ(created->second[0].host_id, "h-b");
  const v1::Command& build_cmd = created->second[0].command;
  EXPECT_EQ(build_cmd.step().kernel_build().source().tree(), "/src/linux");
  ASSERT_EQ(created->first.commands_size(), 1);  // nothing on the target yet

  v1::KernelBuild build = Build();
  ApplyOutcome out = Finish("h-b", 1, build_cmd.command_id(), v1::PASS, &build);
  ASSERT_EQ(out.dispatch.size(), 1u);
  EXPECT_EQ(out.dispatch[0].host_id, "h-g");
  const v1::Step& install = out.dispatch[0].command.step();
  ASSERT_TRUE(install.has_kernel_install());
  EXPECT_EQ(install.kernel_install().build().release(), "6.1.158-kf");
  EXPECT_TRUE(install.kernel_install().via_provider());
  EXPECT_TRUE(RunsOnController(install));

  auto job = store_->GetJob(created->first.id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->build().identity(), build.identity());

  auto fin = store_->FinishCommand(
      out.dispatch[0].command.command_id(),
      [] {
        v1::CommandResult r;
        r.set_verdict(v1::PASS);
        return r;
      }(),
      3000);
  ASSERT_TRUE(fin.ok()) << fin.status();
  ASSERT_EQ(fin->dispatch.size(), 1u);
  const v1::RebootStep& reboot = fin->dispatch[0].command.step().reboot();
  EXPECT_EQ(reboot.expect_release(), "6.1.158-kf");
  EXPECT_EQ(reboot.expect_identity(), build.identity());
  EXPECT_TRUE(reboot.via_provider());
}

// Validates that a failed build skips every later step on every target and ends the job FAIL.
TEST_F(KernelJobsTest, FailedBuildSkipsTheTargets) {
  Register("h-b", "builder", "");
  Register("h-g", "g1", "grub");
  auto created = store_->CreateJob(BootSpec(), {"h-g"}, "t", 10, "h-b");
  ASSERT_TRUE(created.ok());
  ApplyOutcome out = Finish("h-b", 1, created->second[0].command.command_id(), v1::FAIL);
  EXPECT_TRUE(out.dispatch.empty());
  ASSERT_EQ(out.finished_jobs.size(), 1u);
  auto job = store_->GetJob(created->first.id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->verdict(), v1::FAIL);
  int skipped = 0;
  for (const v1::CommandInfo& c : job->commands()) skipped += c.state() == v1::COMMAND_SKIPPED;
  EXPECT_EQ(skipped, 2);
}

// Validates that a build-once job needs a builder host.
TEST_F(KernelJobsTest, NoBuilderIsRefused) {
  auto created = store_->CreateJob(BootSpec(), {"h-g"}, "t", 10, "");
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
}

// Validates that a host that comes back on another kernel than the reboot expects ends the
// reboot BOOT_FAILED with "expected X, running Y", and on the expected one PASS.
TEST_F(KernelJobsTest, RebootVerifiesTheRunningKernel) {
  for (bool right : {false, true}) {
    SetUp();
    Register("h-g", "g1", "grub", "boot-1");
    v1::JobSpec spec;
    spec.mutable_hosts()->add_names("g1");
    v1::RebootStep* r = spec.add_steps()->mutable_reboot();
    r->set_expect_release("6.1.158-kf");
    r->set_expect_identity(std::string(64, 'c'));
    auto created = store_->CreateJob(spec, {"h-g"}, "t", 10, "");
    ASSERT_TRUE(created.ok());
    v1::SequencedItem started;
    started.set_seq(1);
    started.mutable_started()->set_command_id(created->second[0].command.command_id());
    ASSERT_TRUE(store_->ApplySequenced("h-g", {started}, 20).ok());
    if (right) {
      Register("h-g", "g1", "grub", "boot-2", "6.1.158-kf",
               "Linux version 6.1.158-kf (kfleet@kf-cccccccccccccccc) #1");
    } else {
      Register("h-g", "g1", "grub", "boot-2");
    }
    auto booted = store_->HostBooted("h-g", "boot-1", "boot-2", 5000);
    ASSERT_TRUE(booted.ok()) << booted.status();
    auto job = store_->GetJob(created->first.id());
    ASSERT_TRUE(job.ok());
    const v1::CommandResult& result = job->commands(0).result();
    if (right) {
      EXPECT_EQ(result.verdict(), v1::PASS) << result.detail();
    } else {
      EXPECT_EQ(result.verdict(), v1::BOOT_FAILED);
      EXPECT_NE(result.detail().find("expected 6.1.158-kf (build cccccccccccc), running "
                                     "6.1.0-1-amd64"),
                std::string::npos)
          << result.detail();
    }
  }
}

// Validates the identity check: the same release built elsewhere is not the kernel expected.
TEST(StepFillTest, SameReleaseOtherBuildIsWrongKernel) {
  v1::RebootStep r;
  r.set_expect_release("6.1.158-kf");
  r.set_expect_identity(std::string(64, 'd'));
  v1::HostFacts f;
  f.set_kernel_release("6.1.158-kf");
  f.set_kernel_version("Linux version 6.1.158-kf (kfleet@kf-eeeeeeeeeeeeeeee) #1");
  std::string why;
  EXPECT_FALSE(RunningExpectedKernel(r, f, &why));
  EXPECT_NE(why.find("built elsewhere"), std::string::npos) << why;
  f.set_kernel_version("Linux version 6.1.158-kf (kfleet@kf-dddddddddddddddd) #1");
  EXPECT_TRUE(RunningExpectedKernel(r, f, &why));
}

}  // namespace
}  // namespace kfleet::controller

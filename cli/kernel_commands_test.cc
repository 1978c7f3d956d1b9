// kctl run, boot and artifacts against a fake controller.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/args.h"
#include "cli/boot_command.h"
#include "cli/fake_artifact_service.h"
#include "cli/fake_fleet_service.h"
#include "cli/kctl.h"
#include "cli/run_command.h"
#include "common/files.h"
#include "common/sha256.h"
#include "google/protobuf/util/json_util.h"

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

const absl::Time kT0 = absl::FromUnixSeconds(1714564984);
const std::string kIdentity = "1a2b3c4d5e6f" + std::string(52, '0');

int64_t At(double seconds) { return absl::ToUnixMillis(kT0 + absl::Seconds(seconds)); }

v1::CommandInfo* AddCommand(v1::Job& job, const std::string& id, const std::string& host,
                            int step) {
  v1::CommandInfo* c = job.add_commands();
  c->set_id(id);
  c->set_host_name(host);
  c->set_step_index(step);
  c->set_state(v1::COMMAND_PENDING);
  c->set_created_unix_ms(At(0));
  *c->mutable_step() = job.spec().steps(step);
  return c;
}

void Finish(v1::CommandInfo* c, v1::Verdict verdict, double started, double finished,
            const std::string& detail) {
  c->set_state(v1::COMMAND_FINISHED);
  c->set_started_unix_ms(At(started));
  c->set_finished_unix_ms(At(finished));
  c->mutable_result()->set_verdict(verdict);
  c->mutable_result()->set_exit_code(verdict == v1::PASS ? 0 : -1);
  c->mutable_result()->set_wall_ms(absl::ToInt64Milliseconds(absl::Seconds(finished - started)));
  c->mutable_result()->set_detail(detail);
}

std::string Sha256Hex(const std::string& data) {
  absl::StatusOr<Sha256> h = Sha256::Create();
  h->Update(data);
  return *h->FinishHex();
}

class KernelCommandsTest : public ::testing::Test {
 protected:
  KernelCommandsTest() {
    std::string pattern = ::testing::TempDir() + "kctl_kernel_XXXXXX";
    dir_ = mkdtemp(pattern.data());

    v1::JobSpec& spec = *submitted_.mutable_spec();
    spec.set_name("boot linux");
    spec.add_steps()->mutable_kernel_build();
    spec.add_steps()->mutable_kernel_install();
    spec.add_steps()->mutable_reboot();
    submitted_.set_id("j-1");
    submitted_.set_state(v1::JOB_RUNNING);
    submitted_.set_created_unix_ms(At(0));
    AddCommand(submitted_, "c-b", "builder-1", 0);
    service_.job = submitted_;
  }
  ~KernelCommandsTest() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    Io io{.out = out_,
          .err = err_,
          .out_is_tty = tty_,
          .now = [this] { return now_; },
          .sleep = [this](absl::Duration d) { now_ += d; },
          .tz = absl::UTCTimeZone()};
    args.insert(args.begin(), {"--insecure", "--controller", server_.address()});
    EnvLookup no_env = [](absl::string_view) { return std::nullopt; };
    return RunKctl(args, io, no_env, absl::Seconds(5));
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path) << text;
    return path;
  }

  // The job as WatchJob reports it: building, then ended with `reboot_verdict`.
  void ScriptBoot(v1::Verdict reboot_verdict, const std::string& reboot_detail) {
    v1::Job building = submitted_;
    building.mutable_commands(0)->set_state(v1::COMMAND_RUNNING);
    building.mutable_commands(0)->set_started_unix_ms(At(12.3));
    v1::Job done = building;
    done.set_state(v1::JOB_DONE);
    done.set_verdict(reboot_verdict);
    done.set_finished_unix_ms(At(112));
    v1::KernelBuild* build = done.mutable_build();
    build->set_identity(kIdentity);
    build->set_release("6.1.158-kf");
    build->set_builder("builder-1");
    build->set_build_ms(85000);
    Finish(done.mutable_commands(0), v1::PASS, 12.3, 97,
           "built kernel 6.1.158-kf in 85 s (build 1a2b3c4d5e6f)");
    Finish(AddCommand(done, "c-i", "guest-1", 1), v1::PASS, 98, 100,
           "installed kernel 6.1.158-kf; boots once from grub entry kfleet");
    Finish(AddCommand(done, "c-r", "guest-1", 2), reboot_verdict, 100, 112, reboot_detail);
    service_.watch = {submitted_, building, done};
  }

  std::string dir_;
  bool tty_ = false;
  absl::Time now_ = kT0 + absl::Seconds(1);
  v1::Job submitted_;
  FakeFleetService service_;
  FakeArtifactService artifacts_;
  FakeFleetServer server_{service_, &artifacts_};
  std::ostringstream out_;
  std::ostringstream err_;
};

// Validates that a spec with errors prints every error as its own line, exits 2 and submits
// nothing.
TEST_F(KernelCommandsTest, RunBadSpecSubmitsNothing) {
  std::string path = WriteFile("bad.yaml",
                               "name: bad\n"
                               "hosts: {labels: {pool: local}}\n"
                               "steps:\n"
                               "  - biuld: {}\n"
                               "  - reboot: {timeout: 5 minutes}\n");
  EXPECT_EQ(Run({"run", "-f", path}), 2);
  std::vector<std::string> lines = absl::StrSplit(err_.str(), '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 2u) << err_.str();
  for (const std::string& line : lines) {
    EXPECT_THAT(line, StartsWith(absl::StrCat("kctl: ", path, ":"))) << err_.str();
  }
  EXPECT_THAT(err_.str(), HasSubstr("biuld"));
  EXPECT_THAT(err_.str(), HasSubstr("5 minutes"));
  EXPECT_EQ(out_.str(), "");
  EXPECT_THAT(service_.calls(), IsEmpty());

  EXPECT_EQ(Run({"run", "-f", absl::StrCat(dir_, "/missing.yaml")}), 2);
  EXPECT_THAT(err_.str(), StartsWith("kctl: run: -f: open "));
  EXPECT_EQ(Run({"run"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("kctl run -f job.yaml"));
  EXPECT_THAT(service_.calls(), IsEmpty());
}

// Validates run off a terminal: the spec as submitted, the job id on stderr, one line per change,
// then a line per command, the kernel, the times and the verdict; exit 0 on PASS.
TEST_F(KernelCommandsTest, RunFollowsAndReports) {
  std::string path = WriteFile("boot.yaml",
                               "name: boot linux\n"
                               "hosts: {labels: {pool: local}, count: 1}\n"
                               "kernel: {tree: /src/linux, config: defconfig}\n"
                               "steps:\n"
                               "  - kernel_build: {}\n"
                               "  - kernel_install: {}\n"
                               "  - reboot: {timeout: 5m}\n");
  ScriptBoot(v1::PASS,
             "rebooted and registered again after 12s (boot id 3dfa5a2b, kernel 6.1.158-kf)");
  EXPECT_EQ(Run({"run", "-f", path}), 0);
  EXPECT_EQ(err_.str(), "job j-1 submitted\n");
  EXPECT_EQ(out_.str(),
            "   0.0s  builder-1  kernel_build  PENDING\n"
            "  12.3s  builder-1  kernel_build  RUNNING\n"
            "  97.0s  builder-1  kernel_build  PASS  built kernel 6.1.158-kf in 85 s (build "
            "1a2b3c4d5e6f)\n"
            " 100.0s  guest-1  kernel_install  PASS  installed kernel 6.1.158-kf; boots once from "
            "grub entry kfleet\n"
            " 112.0s  guest-1  reboot  PASS  rebooted and registered again after 12s (boot id "
            "3dfa5a2b, kernel 6.1.158-kf)\n"
            "\n"
            "builder-1 kernel_build: PASS (built kernel 6.1.158-kf in 85 s (build 1a2b3c4d5e6f), "
            "1m24s)\n"
            "guest-1 kernel_install: PASS (installed kernel 6.1.158-kf; boots once from grub "
            "entry kfleet, 2.0s)\n"
            "guest-1 reboot: PASS (rebooted and registered again after 12s (boot id 3dfa5a2b, "
            "kernel 6.1.158-kf), 12s)\n"
            "kernel 6.1.158-kf, build 1a2b3c4d5e6f (built in 85 s) on builder-1\n"
            "build time: 1m24s (builder-1)\n"
            "boot time:  12s (guest-1)\n"
            "total time: 1m52s\n"
            "PASS\n");
  v1::JobSpec sent = service_.last_submit().spec();
  EXPECT_EQ(sent.kernel().tree(), "/src/linux");
  EXPECT_EQ(sent.hosts().count(), 1u);
  ASSERT_EQ(sent.steps_size(), 3);
  EXPECT_EQ(sent.steps(2).timeout(), "5m");
  EXPECT_THAT(service_.calls(), ElementsAre("SubmitJob", "WatchJob j-1"));
}

// Validates that a run's local tree and config files are made absolute, other parts kept.
TEST_F(KernelCommandsTest, RunMakesLocalPathsAbsolute) {
  mkdir(absl::StrCat(dir_, "/linux").c_str(), 0755);
  WriteFile("my.config", "CONFIG_X=y\n");
  absl::StatusOr<v1::JobSpec> spec = LoadJobSpec(
      "hosts: {names: [h]}\n"
      "kernel: {tree: linux, config: defconfig+my.config+kvm_guest.config}\n"
      "steps: [{kernel_build: {}}]\n",
      "job.yaml", dir_);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->kernel().tree(), absl::StrCat(dir_, "/linux"));
  EXPECT_EQ(spec->kernel().config(),
            absl::StrCat("defconfig+", dir_, "/my.config+kvm_guest.config"));
}

// Validates run -o json: no progress, the final Job as one JSON document, the verdict's code.
TEST_F(KernelCommandsTest, RunJson) {
  std::string path = WriteFile("boot.yaml",
                               "hosts: {names: [guest-1]}\n"
                               "kernel: {tree: /src/linux}\n"
                               "steps: [{kernel_build: {}}, {kernel_install: {}}, {reboot: {}}]\n");
  ScriptBoot(v1::BOOT_FAILED, "expected 6.1.158-kf, running 6.1.0-13-amd64");
  EXPECT_EQ(Run({"run", "-f", path, "-o", "json"}), 4);
  v1::Job job;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out_.str(), &job).ok()) << out_.str();
  EXPECT_EQ(job.verdict(), v1::BOOT_FAILED);
  EXPECT_EQ(job.build().release(), "6.1.158-kf");
  EXPECT_THAT(out_.str(), Not(HasSubstr("RUNNING  ")));
}

// Validates run on a terminal: the table drawn, redrawn in place (cursor up, clear), then the
// report.
TEST_F(KernelCommandsTest, RunRedrawsOnTerminal) {
  std::string path = WriteFile("boot.yaml",
                               "hosts: {names: [guest-1]}\n"
                               "kernel: {tree: /src/linux}\n"
                               "steps: [{kernel_build: {}}, {kernel_install: {}}, {reboot: {}}]\n");
  ScriptBoot(v1::PASS, "rebooted");
  tty_ = true;
  EXPECT_EQ(Run({"run", "-f", path}), 0);
  std::string out = out_.str();
  EXPECT_THAT(out, StartsWith("job j-1 (boot linux): running for 1.0s\n"
                              "HOST        STEP           STATE     ELAPSED   DETAIL\n"
                              "builder-1   kernel_build   PENDING   -         -\n"));
  EXPECT_THAT(out, HasSubstr("\x1b[3A\r\x1b[J"));
  EXPECT_THAT(out, HasSubstr("job j-1 (boot linux): PASS after 1m52s\n"));
  EXPECT_THAT(out, EndsWith("total time: 1m52s\nPASS\n"));
}

// Validates the JobSpec boot builds from its flags.
TEST_F(KernelCommandsTest, BootBuildsJobSpec) {
  ScriptBoot(v1::PASS, "rebooted");
  EXPECT_EQ(Run({"boot",
                 "--tree",
                 "/src/linux",
                 "--ref",
                 "v6.1",
                 "--config",
                 "defconfig+kvm_guest.config",
                 "--localversion",
                 "-kf",
                 "--jobs",
                 "8",
                 "-l",
                 "pool=local",
                 "--boot-timeout",
                 "3m",
                 "--build-timeout",
                 "1h",
                 "--",
                 "uname",
                 "-r"}),
            0);
  v1::JobSpec spec = service_.last_submit().spec();
  EXPECT_EQ(spec.name(), "boot linux v6.1");
  EXPECT_EQ(spec.kernel().tree(), "/src/linux");
  EXPECT_EQ(spec.kernel().ref(), "v6.1");
  EXPECT_EQ(spec.kernel().config(), "defconfig+kvm_guest.config");
  EXPECT_EQ(spec.kernel().localversion(), "-kf");
  EXPECT_EQ(spec.kernel().jobs(), 8u);
  EXPECT_EQ(spec.hosts().labels().at("pool"), "local");
  EXPECT_EQ(spec.hosts().count(), 1u);
  ASSERT_EQ(spec.steps_size(), 4);
  EXPECT_TRUE(spec.steps(0).has_kernel_build());
  EXPECT_EQ(spec.steps(0).timeout(), "1h");
  EXPECT_TRUE(spec.steps(1).has_kernel_install());
  EXPECT_TRUE(spec.steps(2).has_reboot());
  EXPECT_EQ(spec.steps(2).timeout(), "3m");
  EXPECT_THAT(spec.steps(3).exec().argv(), ElementsAre("uname", "-r"));
  EXPECT_THAT(out_.str(), EndsWith("\nPASS\n"));
}

// Validates boot's defaults: no exec step without ARGV, reboot within 5m, named hosts without a
// count, a relative tree made absolute, the default name from the tree.
TEST_F(KernelCommandsTest, BootDefaults) {
  mkdir(absl::StrCat(dir_, "/linux-source-6.1").c_str(), 0755);
  absl::StatusOr<Invocation> inv =
      ParseArgs({"boot", "--tree", "linux-source-6.1/", "--host", "a,b"}, AllCommands());
  ASSERT_TRUE(inv.ok()) << inv.status();
  absl::StatusOr<v1::JobSpec> spec = BuildBootJob(*inv, dir_);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "boot linux-source-6.1");
  EXPECT_EQ(spec->kernel().tree(), absl::StrCat(dir_, "/linux-source-6.1"));
  EXPECT_EQ(spec->kernel().config(), "");
  EXPECT_THAT(spec->hosts().names(), ElementsAre("a", "b"));
  EXPECT_EQ(spec->hosts().count(), 0u);
  ASSERT_EQ(spec->steps_size(), 3);
  EXPECT_EQ(spec->steps(2).timeout(), "5m");

  inv =
      ParseArgs({"boot", "--tree", "git@example.com:linux.git", "-l", "pool=local", "--count", "3"},
                AllCommands());
  ASSERT_TRUE(inv.ok()) << inv.status();
  spec = BuildBootJob(*inv, dir_);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "boot linux");
  EXPECT_EQ(spec->hosts().count(), 3u);
}

// Validates that --kselftest adds a kselftest step with those collections after ARGV, and that an
// empty list is a usage error.
TEST_F(KernelCommandsTest, BootKselftestAddsATestStep) {
  absl::StatusOr<Invocation> inv = ParseArgs({"boot", "--tree", "/src/linux", "-l", "pool=local",
                                              "--kselftest", "size,timers", "--", "uname", "-r"},
                                             AllCommands());
  ASSERT_TRUE(inv.ok()) << inv.status();
  absl::StatusOr<v1::JobSpec> spec = BuildBootJob(*inv, dir_);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->steps_size(), 5);
  EXPECT_TRUE(spec->steps(3).has_exec());
  ASSERT_TRUE(spec->steps(4).has_test());
  EXPECT_EQ(spec->steps(4).test().suite(), "kselftest");
  EXPECT_THAT(spec->steps(4).test().kselftest().targets(), ElementsAre("size", "timers"));
  EXPECT_EQ(Run({"boot", "--tree", "/src/linux", "--host", "a", "--kselftest", ","}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--kselftest: expected kselftest collections"));
}

// Validates that bad boot flags are usage errors reported before the controller is asked.
TEST_F(KernelCommandsTest, BootUsageErrors) {
  EXPECT_EQ(Run({"boot", "-l", "pool=local"}), 2);
  EXPECT_THAT(err_.str(), StartsWith("kctl: boot: missing --tree"));
  EXPECT_EQ(Run({"boot", "--tree", "/src/linux"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("no hosts chosen"));
  EXPECT_EQ(Run({"boot", "--tree", "/src/linux", "--host", "a", "--count", "2"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--count needs -l"));
  EXPECT_EQ(Run({"boot", "--tree", "/src/linux", "--host", "a", "--boot-timeout", "soon"}), 2);
  EXPECT_THAT(err_.str(), StartsWith("kctl: boot: --boot-timeout: invalid duration \"soon\""));
  EXPECT_EQ(Run({"boot", "--tree", "no-such-dir-here", "--host", "a"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("no such directory here"));
  EXPECT_EQ(Run({"boot", "--tree", "/src/linux", "--host", "a", "--"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("nothing after \"--\""));
  EXPECT_EQ(Run({"boot", "--tree", "/src/linux", "--host", "a", "uname"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("put the command to run after \"--\", e.g. kctl boot --tree"));
  EXPECT_THAT(service_.calls(), IsEmpty());
}

// Validates exit code 4 and the verdict line when the kernel did not come up.
TEST_F(KernelCommandsTest, BootFailedExits4) {
  ScriptBoot(v1::BOOT_FAILED,
             "guest-1 did not register again before the deadline (5m); power-cycled");
  EXPECT_EQ(Run({"boot", "--tree", "/src/linux", "--host", "guest-1"}), 4);
  EXPECT_THAT(out_.str(), HasSubstr("  reboot  BOOT_FAILED  guest-1 did not register again"));
  EXPECT_THAT(out_.str(), HasSubstr("boot time:  12s (guest-1, BOOT_FAILED)\n"));
  EXPECT_THAT(out_.str(),
              EndsWith("\nBOOT_FAILED: guest-1 did not register again before the deadline "
                       "(5m); power-cycled\n"));
}

// Validates that a watch stream that ends before the job does is an error naming the way on.
TEST_F(KernelCommandsTest, WatchEndsEarly) {
  service_.watch = {submitted_};
  EXPECT_EQ(Run({"boot", "--tree", "/src/linux", "--host", "guest-1"}), 3);
  EXPECT_THAT(err_.str(), HasSubstr("follow it with kctl job j-1 --watch"));
  EXPECT_THAT(service_.calls(), ElementsAre("SubmitJob", "WatchJob j-1", "GetJob j-1"));
}

class ArtifactsTest : public KernelCommandsTest {
 protected:
  ArtifactsTest() {
    AddArtifact("c-b", "builder-1", "vmlinuz", "kernel", kKernel);
    AddArtifact("c-b", "builder-1", "config", "config", "CONFIG_X=y\n");
    artifacts_.chunk_bytes = 1000;
  }

  void AddArtifact(const std::string& command, const std::string& host, const std::string& name,
                   const std::string& kind, const std::string& data) {
    v1::CommandArtifact* a = artifacts_.artifacts.add_artifacts();
    a->set_job_id("j-1");
    a->set_command_id(command);
    a->set_host_name(host);
    a->mutable_artifact()->set_name(name);
    a->mutable_artifact()->set_kind(kind);
    a->mutable_artifact()->set_sha256(Sha256Hex(data));
    a->mutable_artifact()->set_size(data.size());
    artifacts_.blobs[Sha256Hex(data)] = data;
  }

  const std::string kKernel = std::string(5000, 'k') + "end";
};

// Validates the artifact table, its JSON, and the request sent.
TEST_F(ArtifactsTest, Lists) {
  EXPECT_EQ(Run({"artifacts", "j-1"}), 0);
  EXPECT_EQ(out_.str(), absl::StrCat("HOST        COMMAND   NAME      KIND     SIZE      SHA256\n"
                                     "builder-1   c-b       vmlinuz   kernel   4.9 KiB   ",
                                     Sha256Hex(kKernel).substr(0, 12),
                                     "\n"
                                     "builder-1   c-b       config    config   11 B      ",
                                     Sha256Hex("CONFIG_X=y\n").substr(0, 12), "\n"));
  EXPECT_EQ(artifacts_.last_list().job_id(), "j-1");

  EXPECT_EQ(Run({"artifacts", "j-1", "-o", "json"}), 0);
  v1::ListArtifactsResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out_.str(), &parsed).ok());
  EXPECT_EQ(parsed.artifacts(0).artifact().sha256(), Sha256Hex(kKernel));

  EXPECT_EQ(Run({"artifacts", "c-b", "-o", "wide"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr(Sha256Hex(kKernel)));
  EXPECT_EQ(artifacts_.last_list().command_id(), "c-b");

  EXPECT_EQ(Run({"artifacts", "j-2"}), 8);
  EXPECT_EQ(err_.str(), "kctl: ListArtifacts: no job \"j-2\"\n");
  EXPECT_EQ(Run({"artifacts", "x-1"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("neither a job id (j-...) nor a command id (c-...)"));
}

// Validates get JOB NAME: the blob fetched into -O PATH, resumed from PATH.part, verified, and
// the .part gone.
TEST_F(ArtifactsTest, GetResumesFromPart) {
  std::string dest = absl::StrCat(dir_, "/vmlinuz-test");
  WriteFile("vmlinuz-test.part", kKernel.substr(0, 2500));
  EXPECT_EQ(Run({"artifacts", "get", "j-1", "vmlinuz", "-O", dest}), 0) << err_.str();
  absl::StatusOr<std::string> got = ReadFile(dest);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, kKernel);
  struct stat st;
  EXPECT_NE(stat(absl::StrCat(dest, ".part").c_str(), &st), 0);
  ASSERT_EQ(artifacts_.downloads().size(), 1u);
  EXPECT_EQ(artifacts_.downloads()[0].offset(), 2500u);
  EXPECT_THAT(err_.str(), HasSubstr("resuming from " + dest + ".part (2.4 KiB already here)\n"));
  EXPECT_THAT(err_.str(),
              HasSubstr(absl::StrCat("saved ", dest, " (4.9 KiB, sha256 ",
                                     Sha256Hex(kKernel).substr(0, 12), " verified)\n")));

  // By digest, into a directory: saved under the digest's name.
  EXPECT_EQ(Run({"artifacts", "get", "sha256:" + Sha256Hex("CONFIG_X=y\n"), "-O", dir_}), 0)
      << err_.str();
  got = ReadFile(absl::StrCat(dir_, "/", Sha256Hex("CONFIG_X=y\n")));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "CONFIG_X=y\n");
}

// Validates the errors of get: unknown name (8, with a suggestion), two different blobs of one
// name (2, naming the digests), an unknown digest (8, no .part left), malformed arguments (2).
TEST_F(ArtifactsTest, GetErrors) {
  EXPECT_EQ(Run({"artifacts", "get", "j-1", "vmlinux", "-O", dir_}), 8);
  EXPECT_EQ(err_.str(),
            "kctl: artifacts get: j-1 has no artifact named \"vmlinux\" (did you mean "
            "\"vmlinuz\"?); kctl artifacts j-1 lists them\n");

  AddArtifact("c-r", "guest-1", "config", "config", "CONFIG_Y=y\n");
  EXPECT_EQ(Run({"artifacts", "get", "j-1", "config", "-O", dir_}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("2 different artifacts named \"config\""));
  EXPECT_THAT(err_.str(), HasSubstr("sha256:" + Sha256Hex("CONFIG_Y=y\n")));

  std::string missing(64, 'e');
  EXPECT_EQ(Run({"artifacts", "get", "sha256:" + missing, "-O", dir_}), 8);
  EXPECT_THAT(err_.str(), HasSubstr("the controller has no artifact with this sha256"));
  struct stat st;
  EXPECT_NE(stat(absl::StrCat(dir_, "/", missing, ".part").c_str(), &st), 0);

  EXPECT_EQ(Run({"artifacts", "get", "sha256:abc"}), 2);
  EXPECT_EQ(Run({"artifacts", "get", "j-1"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("missing the artifact's NAME"));
  EXPECT_EQ(Run({"artifacts", "get"}), 2);
  EXPECT_EQ(Run({"artifacts", "j-1", "vmlinuz"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("download with kctl artifacts get j-1 NAME"));
  EXPECT_EQ(Run({"artifacts", "get", "j-1", "vmlinuz", "-O", "/no/such/dir/x"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("no directory /no/such/dir"));
}

// Validates get JOB sha256:SHORT: the 12 digits the table shows fetch the one artifact they fit
// under its name; digits fitting two blobs are refused naming both; a short digest without the
// job says to give it.
TEST_F(ArtifactsTest, GetByShortDigest) {
  const std::string config = Sha256Hex("CONFIG_X=y\n");
  EXPECT_EQ(Run({"artifacts", "get", "j-1", "sha256:" + config.substr(0, 12), "-O", dir_}), 0)
      << err_.str();
  absl::StatusOr<std::string> got = ReadFile(absl::StrCat(dir_, "/config"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "CONFIG_X=y\n");

  // Two blobs whose digests share their first 8 digits.
  for (const auto& [name, fill] :
       {std::pair<std::string, char>{"one.full", '1'}, {"two.full", '2'}}) {
    v1::CommandArtifact* x = artifacts_.artifacts.add_artifacts();
    x->set_job_id("j-1");
    x->set_command_id("c-r");
    x->mutable_artifact()->set_name(name);
    x->mutable_artifact()->set_sha256(absl::StrCat("abcdef01", std::string(56, fill)));
  }
  EXPECT_EQ(Run({"artifacts", "get", "j-1", "sha256:abcdef01", "-O", dir_}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("sha256:abcdef01 is ambiguous in j-1: 2 different artifacts"));
  EXPECT_THAT(err_.str(), HasSubstr("one.full (c-r): sha256:abcdef011111"));
  EXPECT_THAT(err_.str(), HasSubstr("two.full (c-r): sha256:abcdef012222"));

  EXPECT_EQ(Run({"artifacts", "get", "j-1", "sha256:ffffff0000", "-O", dir_}), 8);
  EXPECT_THAT(err_.str(), HasSubstr("no artifact whose sha256 starts with ffffff0000"));
  EXPECT_EQ(Run({"artifacts", "get", "sha256:" + config.substr(0, 12)}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("kctl artifacts get JOB sha256:" + config.substr(0, 12)));
}

// Validates that the new commands' help pages render and that run is no longer "planned".
TEST_F(KernelCommandsTest, Help) {
  EXPECT_EQ(Run({"boot", "--help"}), 0);
  EXPECT_THAT(out_.str(), StartsWith("NAME\n    kctl boot - "));
  EXPECT_THAT(out_.str(), HasSubstr("kctl boot --tree /usr/src/linux-source-6.1 -l pool=local -- "
                                    "uname -r"));
  EXPECT_THAT(out_.str(), HasSubstr("deploy/kernel/kfleet-guest.config"));
  EXPECT_EQ(Run({"help", "run"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("absolute"));
  EXPECT_EQ(Run({"artifacts", "--help"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("-O, --output-file PATH"));
  EXPECT_THAT(service_.calls(), IsEmpty());
}

}  // namespace
}  // namespace kfleet::cli

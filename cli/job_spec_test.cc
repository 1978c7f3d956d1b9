#include "cli/job_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"

namespace kfleet::cli {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

std::string Fixture(const std::string& name) {
  std::ifstream in(absl::StrCat(KFLEET_JOB_SPEC_TESTDATA, "/", name), std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

v1::JobSpec Proto(const std::string& text) {
  v1::JobSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec)) << text;
  return spec;
}

// The error message of parsing `yaml` as job.yaml; "" if it parsed.
std::string Errors(const std::string& yaml) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpec(yaml, "job.yaml");
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

// A valid job around the given steps.
std::string WithSteps(const std::string& steps) {
  return absl::StrCat("name: t\nhosts: {all: true}\nsteps:\n", steps);
}

// Validates that the example of DESIGN.md (without its test steps) maps onto the proto.
TEST(JobSpecTest, DesignExample) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpec(Fixture("valid_design.yaml"), "design.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*spec, Proto(R"pb(
    name: "xfs-smoke"
    hosts {
      labels { key: "pool" value: "local" }
      count: 2
    }
    kernel {
      tree: "/src/linux"
      ref: "v6.1"
      config: "defconfig+kvm_guest.config"
      localversion: "-kf"
    }
    steps { kernel_build {} }
    steps { kernel_install {} }
    steps {
      timeout: "5m"
      reboot {}
    }
  )pb")))
      << spec->DebugString();
}

// Validates that the design example's test steps, written before the test step existed, get an
// error for each field the proto names otherwise, with a suggestion where one is close.
TEST(JobSpecTest, DesignExampleTestStepsNameTheirWrongFields) {
  EXPECT_EQ(Errors(Fixture("invalid_design_with_tests.yaml")),
            "job.yaml:9:58: steps[4].test.fstests: unknown field \"fs\", did you mean "
            "\"fstype\"? (expected one of tree, ref, fstype, config, groups, exclude_groups, "
            "expunge, expunge_from, loop_size_mib)\n"
            "job.yaml:9:67: steps[4].test.fstests: unknown field \"section\" (expected one of "
            "tree, ref, fstype, config, groups, exclude_groups, expunge, expunge_from, "
            "loop_size_mib)\n"
            "job.yaml:9:85: steps[4].test.fstests: unknown field \"tests\" (expected one of "
            "tree, ref, fstype, config, groups, exclude_groups, expunge, expunge_from, "
            "loop_size_mib)");
}

// Validates the three ways to write an exec step and the two places of a step's timeout.
TEST(JobSpecTest, ExecFormsAndTimeouts) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpec(Fixture("valid_exec_forms.yaml"), "x.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_THAT(spec->steps(), SizeIs(5));
  EXPECT_THAT(spec->steps(0).exec().argv(), ElementsAre("/bin/sh", "-c", "uname -r"));
  EXPECT_THAT(spec->steps(1).exec().argv(), ElementsAre("uname", "-r"));
  EXPECT_THAT(spec->steps(2).exec().argv(), ElementsAre("make", "-C", "/src/tests", "check", ""));
  EXPECT_EQ(spec->steps(2).exec().env().at("V"), "1");
  EXPECT_EQ(spec->steps(2).exec().env().at("EMPTY"), "");
  EXPECT_EQ(spec->steps(2).exec().dir(), "/src/tests");
  EXPECT_EQ(spec->steps(2).timeout(), "30m");
  EXPECT_THAT(spec->steps(3).exec().argv(),
              ElementsAre("/bin/sh", "-c", "echo 'a: b' # not a comment"));
  EXPECT_EQ(spec->steps(3).timeout(), "90s");
  EXPECT_TRUE(spec->steps(4).has_reboot());
  EXPECT_EQ(spec->steps(4).timeout(), "5m");
  EXPECT_THAT(spec->hosts().names(), ElementsAre("host-a", "host-b.local"));
}

// Validates that a test step says with skips_ok that its tests may all be skipped: parsed, kept
// through emit and parse, false when left out, and a value that is not a boolean refused.
TEST(JobSpecTest, SkipsOk) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpec(
      WithSteps("  - test: {suite: kselftest, kselftest: {targets: [firmware]}, skips_ok: true}\n"
                "  - test: {suite: kselftest, kselftest: {targets: [size]}}\n"),
      "job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->steps(0).test().skips_ok());
  EXPECT_FALSE(spec->steps(1).test().skips_ok());
  std::string yaml = JobSpecToYaml(*spec);
  EXPECT_THAT(yaml, HasSubstr("skips_ok: true"));
  absl::StatusOr<v1::JobSpec> again = ParseJobSpec(yaml, "emitted.yaml");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*spec, *again)) << yaml;
  EXPECT_THAT(Errors(WithSteps("  - test: {suite: exec, argv: [./t], skips_ok: sometimes}\n")),
              HasSubstr("steps[0].test.skips_ok"));
}

// Validates that `reboot:` with no value and `kernel_build:` are empty messages of their kind.
TEST(JobSpecTest, EmptyKinds) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpec(Fixture("valid_kernel_block.yaml"), "k.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->steps(0).has_kernel_build());
  EXPECT_EQ(spec->kernel().jobs(), 16u);
  spec = ParseJobSpec(Fixture("valid_all_hosts.yaml"), "a.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->steps(1).has_reboot());
  EXPECT_EQ(spec->steps(0).reboot().cmdline(), "rdinit=/bin/false");
  EXPECT_EQ(spec->steps(0).reboot().expect_identity(), "0123abcd");
}

struct ErrorCase {
  const char* what;
  std::string yaml;
  std::string error;  // the whole message
};

// Validates each kind of error: its line, column, field path and wording.
TEST(JobSpecTest, EachError) {
  const std::string kKinds = "(expected one of exec, kernel_build, kernel_install, reboot, test)";
  const std::vector<ErrorCase> cases = {
      {"unknown top-level field", "nmae: t\nhosts: {all: true}\nsteps: [exec: [x]]\n",
       "job.yaml:1:1: unknown field \"nmae\", did you mean \"name\"? (expected one of name, hosts, "
       "steps, kernel)"},
      {"unknown nested field", WithSteps("  - reboot: {cmdlin: x}\n"),
       "job.yaml:4:14: steps[0].reboot: unknown field \"cmdlin\", did you mean \"cmdline\"? "
       "(expected one of cmdline, expect_release, expect_identity, via_provider, timeout)"},
      {"unknown step kind", WithSteps("  - biuld: {}\n"),
       "job.yaml:4:5: steps[0]: unknown step kind \"biuld\", did you mean \"kernel_build\"? " +
           kKinds},
      {"kind field beside the kind", WithSteps("  - exec:\n    argv: [ls]\n"),
       "job.yaml:5:5: steps[0]: unknown field \"argv\"; argv is a field of exec: indent it under "
       "exec (expected exec, memory_max and timeout only)"},
      {"unknown field beside the kind", WithSteps("  - exec: [ls]\n    timout: 5m\n"),
       "job.yaml:5:5: steps[0]: unknown field \"timout\", did you mean \"timeout\"? (expected "
       "exec, memory_max and timeout only)"},
      {"two kinds", WithSteps("  - {exec: [ls], reboot: {}}\n"),
       "job.yaml:4:18: steps[0]: has two step kinds, exec and reboot (expected one kind per step; "
       "write each as its own - item)"},
      {"no kind", WithSteps("  - timeout: 5m\n"),
       "job.yaml:4:5: steps[0]: has no step kind " + kKinds},
      {"bare kind name", WithSteps("  - reboot\n"),
       "job.yaml:4:5: steps[0]: \"reboot\" is not a step (expected a map: - reboot: {})"},
      {"step not a map", WithSteps("  - [ls]\n"),
       "job.yaml:4:5: steps[0]: a list is not a step (expected a map with one step kind, e.g. - "
       "exec: [uname, -r]; expected one of exec, kernel_build, kernel_install, reboot, test)"},
      {"bad duration inside", WithSteps("  - reboot: {timeout: 5 minutes}\n"),
       "job.yaml:4:23: steps[0].reboot.timeout: \"5 minutes\" is not a duration (expected a "
       "number and a unit: 30s, 5m, 2h)"},
      {"bad duration beside", WithSteps("  - reboot: {}\n    timeout: -5m\n"),
       "job.yaml:5:14: steps[0].timeout: \"-5m\" is not a duration (expected a number and a "
       "unit: 30s, 5m, 2h)"},
      {"timeout twice", WithSteps("  - reboot: {timeout: 1m}\n    timeout: 2m\n"),
       "job.yaml:4:23: steps[0].reboot.timeout: is given twice, beside the step kind on line 5 "
       "and inside it (expected it once, either place)"},
      {"timeout not a scalar", WithSteps("  - reboot: {timeout: [1m]}\n"),
       "job.yaml:4:23: steps[0].reboot.timeout: a list is not a single value (expected a "
       "string)"},
      {"bool", "hosts: {all: yes}\nsteps: [reboot: {}]\n",
       "job.yaml:1:14: hosts.all: \"yes\" is not a boolean (expected true or false)"},
      {"uint32 negative", "hosts: {labels: {a: b}, count: -1}\nsteps: [reboot: {}]\n",
       "job.yaml:1:32: hosts.count: \"-1\" is not a uint32 (expected a whole number from 0 to "
       "4294967295)"},
      {"uint32 too large",
       "hosts: {all: true}\nkernel: {tree: /l, jobs: 4294967296}\n"
       "steps: [kernel_build: {}]\n",
       "job.yaml:2:26: kernel.jobs: \"4294967296\" is not a uint32 (expected a whole number from "
       "0 to 4294967295)"},
      {"string given a list", "name: [a, b]\nhosts: {all: true}\nsteps: [reboot: {}]\n",
       "job.yaml:1:7: name: a list is not a single value (expected a string)"},
      {"string given nothing", "name:\nhosts: {all: true}\nsteps: [reboot: {}]\n",
       "job.yaml:1:1: name: has no value (expected a string)"},
      {"repeated given a scalar", "hosts: {names: h1}\nsteps: [reboot: {}]\n",
       "job.yaml:1:16: hosts.names: \"h1\" is not a list (expected a list of values, e.g. [a, b])"},
      {"map given a list", "hosts: {labels: [pool=local]}\nsteps: [reboot: {}]\n",
       "job.yaml:1:17: hosts.labels: a list is not a map (expected a map of key: value, e.g. "
       "{pool: local})"},
      {"map value not a scalar", "hosts: {labels: {pool: [a]}}\nsteps: [reboot: {}]\n",
       "job.yaml:1:24: hosts.labels.pool: a list is not a single value (expected a string)"},
      {"message given a scalar",
       "hosts: {all: true}\nkernel: /src/linux\n"
       "steps: [kernel_build: {}]\n",
       "job.yaml:2:9: kernel: \"/src/linux\" is not a map (expected a map with fields tree, ref, "
       "config, localversion, jobs)"},
      {"duplicate key", "hosts: {all: true}\nsteps: [reboot: {}]\nhosts: {all: true}\n",
       "job.yaml:3:1: hosts: is given twice (expected it once; it is first on line 1)"},
      {"hosts missing", "name: t\nsteps: [reboot: {}]\n",
       "job.yaml:1:1: hosts: is missing (expected exactly one of all: true, names: [h1, h2] or "
       "labels: {pool: local})"},
      {"hosts empty", "hosts: {}\nsteps: [reboot: {}]\n",
       "job.yaml:1:8: hosts: chooses no hosts (expected exactly one of all: true, names: [h1, h2] "
       "or labels: {pool: local})"},
      {"hosts combined", "hosts: {all: true, labels: {a: b}}\nsteps: [reboot: {}]\n",
       "job.yaml:1:8: hosts: combines all and labels (expected exactly one of all: true, names: "
       "[h1, h2] or labels: {pool: local})"},
      {"count without labels", "hosts: {names: [h1], count: 1}\nsteps: [reboot: {}]\n",
       "job.yaml:1:29: hosts.count: needs labels: it picks that many hosts carrying them "
       "(expected labels: {k: v} beside count)"},
      {"count too large", "hosts: {labels: {a: b}, count: 1001}\nsteps: [reboot: {}]\n",
       "job.yaml:1:32: hosts.count: 1001 is too many (expected at most 1000)"},
      {"bad host name", "hosts:\n  names:\n    - h1\n    - h 2\n    - h1\nsteps: [reboot: {}]\n",
       "job.yaml:4:7: hosts.names[1]: \"h 2\" is not a host name (expected 1 to 64 of A-Z a-z 0-9 "
       ". _ -)\n"
       "job.yaml:5:7: hosts.names[2]: \"h1\" is given twice (expected each host once)"},
      {"steps missing", "name: t\nhosts: {all: true}\n",
       "job.yaml:1:1: steps: is missing (expected a list of at least one step, e.g. - exec: "
       "[uname, -r])"},
      {"steps empty", "hosts: {all: true}\nsteps: []\n",
       "job.yaml:2:8: steps: is empty (expected a list of at least one step, e.g. - exec: "
       "[uname, -r])"},
      {"kernel_build not first",
       "hosts: {all: true}\nkernel: {tree: /l}\n"
       "steps:\n  - reboot: {}\n  - kernel_build: {}\n",
       "job.yaml:5:5: steps[1].kernel_build: is step 2 (expected kernel_build only as the first "
       "step: it builds once, before the steps that install the kernel)"},
      {"kernel_build without kernel", WithSteps("  - kernel_build:\n"),
       "job.yaml:4:5: steps[0].kernel_build: has no kernel to build (expected the job's kernel: "
       "{tree: /src/linux, ...} beside steps)"},
      {"kernel_build with a source",
       "hosts: {all: true}\nkernel: {tree: /l}\n"
       "steps: [kernel_build: {source: {tree: /m}}]\n",
       "job.yaml:3:32: steps[0].kernel_build.source: is filled in by the controller (expected "
       "the job's kernel: field instead)"},
      {"reboot via_provider", WithSteps("  - reboot: {via_provider: false}\n"),
       "job.yaml:4:28: steps[0].reboot.via_provider: is filled in by the controller (expected no "
       "via_provider)"},
      {"kernel without tree",
       "hosts: {all: true}\nkernel: {ref: v6.1}\n"
       "steps: [kernel_build: {}]\n",
       "job.yaml:2:9: kernel: has no tree (expected tree: a kernel source directory or git URL, "
       "e.g. tree: /src/linux)"},
      {"kernel unused", "hosts: {all: true}\nkernel: {tree: /l}\nsteps: [reboot: {}]\n",
       "job.yaml:2:9: kernel: is unused: no step builds it (expected - kernel_build: {} as the "
       "first step, or no kernel)"},
      {"kernel_install without build", WithSteps("  - kernel_install: {}\n"),
       "job.yaml:4:5: steps[0].kernel_install: has no kernel to install (expected a kernel_build "
       "step before it, as the first step)"},
      {"exec without argv", WithSteps("  - exec: {dir: /tmp}\n"),
       "job.yaml:4:5: steps[0].exec: has no argv (expected a command: exec: [uname, -r], exec: "
       "\"uname -r\" or exec: {argv: [uname, -r]})"},
      {"exec empty list", WithSteps("  - exec: []\n"),
       "job.yaml:4:11: steps[0].exec.argv: is empty (expected a command: exec: [uname, -r], "
       "exec: \"uname -r\" or exec: {argv: [uname, -r]})"},
      {"exec empty command", WithSteps("  - exec: \"  \"\n"),
       "job.yaml:4:11: steps[0].exec: is an empty command (expected a shell command, an argv "
       "list such as [uname, -r], or a map with argv)"},
      {"exec empty program", WithSteps("  - exec: [\"\", x]\n"),
       "job.yaml:4:12: steps[0].exec.argv[0]: is empty (expected the program to run, e.g. "
       "uname)"},
      {"exec env name", WithSteps("  - exec: {argv: [env], env: {\"A=B\": c}}\n"),
       "job.yaml:4:31: steps[0].exec.env[\"A=B\"]: \"A=B\" is not a variable name (expected a "
       "name without =)"},
      {"name empty", "name: \"\"\nhosts: {all: true}\nsteps: [reboot: {}]\n",
       "job.yaml:1:7: name: is empty (expected 1 to 128 printable characters)"},
      {"name control character", "name: \"a\\tb\"\nhosts: {all: true}\nsteps: [reboot: {}]\n",
       "job.yaml:1:7: name: has control characters (expected 1 to 128 printable characters)"},
      {"name not UTF-8", "name: \"a\xff\"\nhosts: {all: true}\nsteps: [reboot: {}]\n",
       "job.yaml:1:7: name: \"a\\xff\" is not UTF-8 text (expected a string)"},
      {"root not a map", "- exec: [ls]\n",
       "job.yaml:1:1: a list is not a job spec (expected a map with fields name, hosts, steps, "
       "kernel)"},
      {"empty file", "# nothing\n",
       "job.yaml:1:1: the file has no job spec (expected a map with name, hosts, steps)"},
      {"two documents", "hosts: {all: true}\nsteps: [reboot: {}]\n---\nname: second\n",
       "job.yaml:3:1: the file has more than one YAML document (expected one job spec per "
       "file)"},
      {"stray comma", "hosts: {all: true}\nsteps: [reboot: {}]\n...\n,\n",
       "job.yaml:4:1: YAML syntax error: unexpected \",\""},
      {"syntax error", Fixture("invalid_syntax.yaml"),
       "job.yaml:3:6: YAML syntax error: end of map flow not found"},
  };
  for (const ErrorCase& c : cases) {
    EXPECT_EQ(Errors(c.yaml), c.error) << c.what << "\n" << c.yaml;
  }
}

// Validates that a step timeout is accepted beside its kind and inside it, and means the same.
TEST(JobSpecTest, TimeoutBesideOrInside) {
  absl::StatusOr<v1::JobSpec> a = ParseJobSpec(WithSteps("  - reboot: {timeout: 5m}\n"), "a");
  absl::StatusOr<v1::JobSpec> b = ParseJobSpec(WithSteps("  - {reboot: {}, timeout: 5m}\n"), "b");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*a, *b));
  EXPECT_EQ(a->steps(0).timeout(), "5m");
}

// Validates memory_max beside a step's kind: taken as written when it is a size, refused with its
// line otherwise, and written back by JobSpecToYaml.
TEST(JobSpecTest, MemoryMax) {
  absl::StatusOr<v1::JobSpec> spec =
      ParseJobSpec(WithSteps("  - exec: [stress-ng, --vm, \"1\"]\n    memory_max: 64M\n"
                             "  - {exec: [true], memory_max: 1073741824}\n"),
                   "m.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->steps(0).memory_max(), "64M");
  EXPECT_EQ(spec->steps(1).memory_max(), "1073741824");
  std::string yaml = JobSpecToYaml(*spec);
  EXPECT_THAT(yaml,
              HasSubstr("  - exec:\n      argv: [stress-ng, --vm, \"1\"]\n    memory_max: 64M\n"));
  absl::StatusOr<v1::JobSpec> again = ParseJobSpec(yaml, "emitted.yaml");
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << yaml;
  EXPECT_TRUE(MessageDifferencer::Equals(*spec, *again)) << yaml;

  EXPECT_EQ(Errors(WithSteps("  - exec: [x]\n    memory_max: 64MB\n  - reboot: {}\n"
                             "    memory_max: lots\n")),
            "job.yaml:5:17: steps[0].memory_max: \"64MB\" is not a size (expected bytes with an "
            "optional K, M, G or T suffix: 64M, 1G)\n"
            "job.yaml:7:17: steps[1].memory_max: \"lots\" is not a size (expected bytes with an "
            "optional K, M, G or T suffix: 64M, 1G)");
  EXPECT_EQ(Errors(WithSteps("  - exec: [x]\n    memory_max: [64M]\n")),
            "job.yaml:5:17: steps[0].memory_max: a list is not a single value (expected a string)");
}

// Validates that every error of a file is reported, in file order, not only the first.
TEST(JobSpecTest, AllErrorsReported) {
  EXPECT_EQ(Errors(Fixture("invalid_many_errors.yaml")),
            "job.yaml:2:14: hosts.all: \"yes\" is not a boolean (expected true or false)\n"
            "job.yaml:3:10: kernel: unknown field \"tre\", did you mean \"tree\"? (expected one "
            "of tree, ref, config, localversion, jobs)\n"
            "job.yaml:5:5: steps[0]: unknown step kind \"biuld\", did you mean \"kernel_build\"? "
            "(expected one of exec, kernel_build, kernel_install, reboot, test)\n"
            "job.yaml:6:11: steps[1].exec.argv: is empty (expected a command: exec: [uname, -r], "
            "exec: \"uname -r\" or exec: {argv: [uname, -r]})\n"
            "job.yaml:7:23: steps[2].reboot.timeout: \"5 minutes\" is not a duration (expected a "
            "number and a unit: 30s, 5m, 2h)\n"
            "job.yaml:8:36: steps[3].kernel_install.via_provider: is filled in by the controller "
            "(expected no via_provider)\n"
            "job.yaml:9:31: steps[4].exec.env: a list is not a map (expected a map of key: value, "
            "e.g. {pool: local})");
  EXPECT_EQ(Errors(Fixture("invalid_order.yaml")),
            "job.yaml:4:5: steps[0].kernel_install: has no kernel to install (expected a "
            "kernel_build step before it, as the first step)\n"
            "job.yaml:5:5: steps[1].kernel_build: is step 2 (expected kernel_build only as the "
            "first step: it builds once, before the steps that install the kernel)\n"
            "job.yaml:6:19: steps[2].exec.argv[0]: is empty (expected the program to run, e.g. "
            "uname)");
}

// Validates that a file with one error among valid fields returns no spec at all.
TEST(JobSpecTest, NothingReturnedOnError) {
  std::string yaml = absl::StrCat(Fixture("valid_design.yaml"), "  - exec: []\n");
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpec(yaml, "job.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(),
            "job.yaml:9:11: steps[3].exec.argv: is empty (expected a command: exec: [uname, -r], "
            "exec: \"uname -r\" or exec: {argv: [uname, -r]})");
}

// Validates that after 50 errors the rest are counted, not listed.
TEST(JobSpecTest, ErrorsAreCapped) {
  std::string steps;
  for (int i = 0; i < 60; ++i) steps += "  - nope: {}\n";
  std::vector<std::string> lines = absl::StrSplit(Errors(WithSteps(steps)), '\n');
  ASSERT_THAT(lines, SizeIs(51));
  EXPECT_THAT(lines[0], StartsWith("job.yaml:4:5: steps[0]: unknown step kind \"nope\""));
  EXPECT_EQ(lines[50], "job.yaml: 10 more errors");
}

// Validates the 1 MiB input bound, on both sides of it.
TEST(JobSpecTest, SizeLimit) {
  std::string yaml = WithSteps("  - reboot: {}\n");
  std::string padded = yaml + "#" + std::string(kMaxJobSpecBytes - yaml.size() - 2, 'x') + "\n";
  ASSERT_EQ(padded.size(), kMaxJobSpecBytes);
  EXPECT_EQ(Errors(padded), "");
  EXPECT_EQ(Errors(padded + "\n"),
            "job.yaml:1:1: the file is 1048577 bytes (expected at most 1048576 bytes, 1 MiB)");
}

// Validates that deep nesting is refused with a position, whether flow or block, and however deep.
TEST(JobSpecTest, DeepNesting) {
  auto flow = [](int depth) {
    return absl::StrCat("hosts: {all: true}\nsteps: [exec: {argv: ", std::string(depth, '['), "x",
                        std::string(depth, ']'), "}]\n");
  };
  // The root map, steps, a step and exec are 4 levels; the first bracket is argv itself.
  EXPECT_EQ(Errors(flow(28)),
            "job.yaml:2:23: steps[0].exec.argv[0]: a list is not a single value (expected a "
            "string)");
  EXPECT_EQ(Errors(flow(29)),
            "job.yaml:2:50: lists and maps are nested deeper than 32 levels (expected at most 32)");
  // yaml-cpp stops these itself (at 2000 levels); the position is where its scanner was.
  std::string deep = Errors(flow(100000));
  EXPECT_THAT(deep, StartsWith("job.yaml:2:"));
  EXPECT_THAT(deep, HasSubstr(": lists and maps are nested deeper than 32 levels"));
  std::string block = "hosts: {all: true}\nsteps:\n";
  for (int i = 0; i < 100000; ++i) block += "- ";
  EXPECT_THAT(Errors(block), HasSubstr("lists and maps are nested deeper than 32 levels"));
  std::string braces = std::string(200000, '{');
  EXPECT_THAT(Errors(braces), HasSubstr("lists and maps are nested deeper than 32 levels"));
}

// Validates that aliases cannot expand a small file into an unbounded tree.
TEST(JobSpecTest, AliasExpansionIsBounded) {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    absl::StrAppend(&yaml, "a", i, ": &a", i, " [", std::string(), "*a", i - 1);
    for (int k = 1; k < 10; ++k) absl::StrAppend(&yaml, ", *a", i - 1);
    absl::StrAppend(&yaml, "]\n");
  }
  EXPECT_THAT(Errors(yaml), HasSubstr("the document expands to more than 1000000 nodes"));
  // A cycle: the anchor names a list that contains itself.
  EXPECT_THAT(Errors("hosts: &h {all: true, x: *h}\nsteps: [reboot: {}]\n"),
              HasSubstr("nested deeper than 32 levels"));
}

// The fixtures whose names start with `prefix`.
std::vector<std::string> Fixtures(const std::string& prefix) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(KFLEET_JOB_SPEC_TESTDATA)) {
    std::string name = e.path().filename().string();
    if (absl::StartsWith(name, prefix)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Validates that every invalid fixture is refused and every valid one accepted.
TEST(JobSpecTest, Fixtures) {
  EXPECT_THAT(Fixtures("valid_"), SizeIs(5));
  for (const std::string& name : Fixtures("valid_")) {
    EXPECT_EQ(Errors(Fixture(name)), "") << name;
  }
  EXPECT_THAT(Fixtures("invalid_"), SizeIs(5));
  for (const std::string& name : Fixtures("invalid_")) {
    EXPECT_THAT(Errors(Fixture(name)), StartsWith("job.yaml:")) << name;
  }
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpec(Fixture("valid_anchors.yaml"), "a.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->steps(1).exec().env().at("TZ"), "UTC");
  EXPECT_EQ(spec->steps(1).timeout(), "1h30m");
}

// Validates that parse(emit(spec)) == spec for every valid fixture.
TEST(JobSpecTest, RoundTripFixtures) {
  for (const std::string& name : Fixtures("valid_")) {
    absl::StatusOr<v1::JobSpec> spec = ParseJobSpec(Fixture(name), name);
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status();
    std::string yaml = JobSpecToYaml(*spec);
    absl::StatusOr<v1::JobSpec> again = ParseJobSpec(yaml, "emitted.yaml");
    ASSERT_TRUE(again.ok()) << name << ": " << again.status() << "\n" << yaml;
    EXPECT_TRUE(MessageDifferencer::Equals(*spec, *again)) << name << "\n" << yaml;
  }
}

// Validates the emitted format on the DESIGN.md example.
TEST(JobSpecTest, EmittedFormat) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpec(Fixture("valid_design.yaml"), "design.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(JobSpecToYaml(*spec),
            "name: xfs-smoke\n"
            "hosts:\n"
            "  labels:\n"
            "    pool: local\n"
            "  count: 2\n"
            "steps:\n"
            "  - kernel_build: {}\n"
            "  - kernel_install: {}\n"
            "  - reboot:\n"
            "      timeout: 5m\n"
            "kernel:\n"
            "  tree: /src/linux\n"
            "  ref: v6.1\n"
            "  config: defconfig+kvm_guest.config\n"
            "  localversion: -kf\n");
  v1::JobSpec env;
  (*env.add_steps()->mutable_exec()->mutable_env())["V"] = "1";
  EXPECT_THAT(JobSpecToYaml(env), HasSubstr("V: \"1\"")) << "a string that reads as a number";
}

// Validates that strings YAML gives meaning to (null, true, numbers, indicators, quotes, line
// breaks, non-ASCII) come back as the same strings.
TEST(JobSpecTest, RoundTripAwkwardStrings) {
  const std::vector<std::string> awkward = {
      "",      "~",       "null",        "Null",   "true",   "no",       "0x10", "1e3",
      ".5",    "-",       "- x",         "?",      ":",      "a: b",     "#x",   "a #b",
      " lead", "trail ",  "multi\nline", "cr\rlf", "tab\tx", "quote\"'", "[x]",  "{x}",
      "*a",    "&a",      "!tag",        "%x",     "@x",     "`x",       "|",    ">",
      "\\",    "C:\\dir", "é ü 中",      "--- ",   "...",    "'",        "\"",   ",",
      "\x01",  "\x7f",    "a\n",         "\n",     "a\r\r",  "\r\n",     "\t"};
  v1::JobSpec spec;
  spec.set_name("awkward");
  spec.mutable_hosts()->set_all(true);
  v1::ExecStep* exec = spec.add_steps()->mutable_exec();
  exec->add_argv("printf");
  for (const std::string& s : awkward) {
    exec->add_argv(s);
    (*exec->mutable_env())[absl::StrCat("K", exec->env_size(), s)] = s;
  }
  v1::RebootStep* reboot = spec.add_steps()->mutable_reboot();
  reboot->set_cmdline("console=ttyS0 quiet: true");
  std::string yaml = JobSpecToYaml(spec);
  absl::StatusOr<v1::JobSpec> again = ParseJobSpec(yaml, "emitted.yaml");
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << yaml;
  EXPECT_TRUE(MessageDifferencer::Equals(spec, *again)) << yaml << "\n" << again->DebugString();
}

}  // namespace
}  // namespace kfleet::cli

#include "cli/job_spec_checks.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "cli/job_spec_yaml.h"
#include "common/duration.h"
#include "common/ids.h"
#include "common/memory_size.h"

namespace kfleet::cli::internal {
namespace {

// These mirror ValidateJobSpec (controller/api/fleet_service.cc), so that a spec that parses here
// is not refused by the controller for its size, and the error can name a line.
constexpr int kMaxSteps = 100;
constexpr int kMaxArgs = 4096;
constexpr uint32_t kMaxCount = 1000;
constexpr size_t kMaxNameBytes = 128;

// Fields of step kinds that the controller fills in when the job is submitted (common.proto).
constexpr std::pair<const char*, const char*> kControllerFields[] = {
    {"kernel_build", "source"},
    {"kernel_install", "build"},
    {"kernel_install", "via_provider"},
    {"reboot", "via_provider"},
    {"kernel_build", "kselftest_targets"},
    {"test", "run"},
    {"test", "list_only"},
    {"test", "kselftest.archive"},
};
constexpr char kHostsExpected[] =
    "expected exactly one of all: true, names: [h1, h2] or labels: {pool: local}";

class SpecChecker {
 public:
  explicit SpecChecker(YamlErrors* errors) : errors_(*errors) {}

  // Checks across fields, after the mapping.
  void Check(const v1::JobSpec& spec) {
    if (errors_.Given("name") && !errors_.Poisoned("name")) {
      const std::string& name = spec.name();
      bool control = std::any_of(name.begin(), name.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      });
      if (name.empty() || name.size() > kMaxNameBytes || control) {
        errors_.Error(errors_.PosFor("name"), "name",
                      absl::StrCat(name.empty() ? "is empty"
                                   : control    ? "has control characters"
                                                : "is too long",
                                   " (expected 1 to ", kMaxNameBytes, " printable characters)"));
      }
    }
    CheckHosts(spec);
    CheckSteps(spec);
  }

 private:
  void CheckHosts(const v1::JobSpec& spec) {
    if (!spec.has_hosts()) {
      if (!errors_.Poisoned("hosts")) {
        errors_.Error(errors_.root(), "hosts", absl::StrCat("is missing (", kHostsExpected, ")"));
      }
      return;
    }
    if (errors_.Poisoned("hosts")) return;
    const v1::HostSelector& sel = spec.hosts();
    std::vector<std::string> given;
    if (sel.all()) given.push_back("all");
    if (!sel.names().empty()) given.push_back("names");
    if (!sel.labels().empty()) given.push_back("labels");
    if (given.size() != 1) {
      errors_.Error(errors_.PosFor("hosts"), "hosts",
                    given.empty() ? absl::StrCat("chooses no hosts (", kHostsExpected, ")")
                                  : absl::StrCat("combines ", absl::StrJoin(given, " and "), " (",
                                                 kHostsExpected, ")"));
    }
    if (errors_.Given("hosts.count") && sel.labels().empty() && given.size() == 1) {
      errors_.Error(errors_.PosFor("hosts.count"), "hosts.count",
                    "needs labels: it picks that many hosts carrying them (expected labels: {k: v} "
                    "beside count)");
    } else if (sel.count() > kMaxCount) {
      errors_.Error(errors_.PosFor("hosts.count"), "hosts.count",
                    absl::StrCat(sel.count(), " is too many (expected at most ", kMaxCount, ")"));
    }
    std::set<std::string> names;
    for (int i = 0; i < sel.names_size(); ++i) {
      std::string path = absl::StrCat("hosts.names[", i, "]");
      if (!IsValidId(sel.names(i))) {
        errors_.Error(errors_.PosFor(path), path,
                      absl::StrCat(Quote(sel.names(i)),
                                   " is not a host name (expected 1 to 64 of A-Z a-z 0-9 . _ -)"));
      } else if (!names.insert(sel.names(i)).second) {
        errors_.Error(
            errors_.PosFor(path), path,
            absl::StrCat(Quote(sel.names(i)), " is given twice (expected each host once)"));
      }
    }
    for (const auto& [key, value] : sel.labels()) {
      if (key.empty() || key.find('=') != std::string::npos || key.find(',') != std::string::npos) {
        std::string path = JoinKey("hosts.labels", key);
        errors_.Error(
            errors_.PosFor(path), path,
            absl::StrCat(Quote(key), " is not a label name (expected a name without = or ,)"));
      }
    }
  }

  void CheckSteps(const v1::JobSpec& spec) {
    if (spec.steps().empty()) {
      if (!errors_.Poisoned("steps")) {
        errors_.Error(
            errors_.PosFor("steps"), "steps",
            absl::StrCat(errors_.Given("steps") ? "is empty" : "is missing",
                         " (expected a list of at least one step, e.g. - exec: [uname, -r])"));
      }
    } else if (spec.steps_size() > kMaxSteps) {
      errors_.Error(
          errors_.PosFor("steps"), "steps",
          absl::StrCat("has ", spec.steps_size(), " steps (expected at most ", kMaxSteps, ")"));
    }
    // Ordering checks need every step's kind: after an unknown kind they would only mislead.
    bool kinds_known = true;
    bool has_build = false;
    for (int i = 0; i < spec.steps_size(); ++i) {
      std::string path = absl::StrCat("steps[", i, "]");
      kinds_known = kinds_known && !errors_.MarkedBad(path) &&
                    spec.steps(i).kind_case() != v1::Step::KIND_NOT_SET;
      has_build = has_build || spec.steps(i).has_kernel_build();
    }
    bool build_before = false;
    for (int i = 0; i < spec.steps_size(); ++i) {
      CheckStep(spec, i, kinds_known, build_before);
      build_before = build_before || spec.steps(i).has_kernel_build();
    }
    if (spec.has_kernel() && !errors_.Poisoned("kernel")) {
      const v1::KernelSource& k = spec.kernel();
      if (k.tree().empty()) {
        errors_.Error(errors_.PosFor("kernel.tree"),
                      errors_.Given("kernel.tree") ? "kernel.tree" : "kernel",
                      absl::StrCat(errors_.Given("kernel.tree") ? "is empty" : "has no tree",
                                   " (expected tree: a kernel source directory or git URL, e.g. "
                                   "tree: /src/linux)"));
      }
      if (!has_build && kinds_known && !spec.steps().empty()) {
        errors_.Error(
            errors_.PosFor("kernel"), "kernel",
            "is unused: no step builds it (expected - kernel_build: {} as the first step, or "
            "no kernel)");
      }
    }
  }

  void CheckStep(const v1::JobSpec& spec, int i, bool kinds_known, bool build_before) {
    const v1::Step& step = spec.steps(i);
    std::string path = absl::StrCat("steps[", i, "]");
    std::string timeout = Join(path, kStepTimeout);
    if (errors_.Given(timeout) && !errors_.Poisoned(timeout) &&
        !ParseDuration(step.timeout()).ok()) {
      errors_.Error(errors_.PosFor(timeout), errors_.Display(timeout),
                    absl::StrCat(Quote(step.timeout()),
                                 " is not a duration (expected a number and a unit: 30s, 5m, 2h)"));
    }
    std::string memory_max = Join(path, kStepMemoryMax);
    if (errors_.Given(memory_max) && !errors_.Poisoned(memory_max) &&
        !ParseMemorySize(step.memory_max()).ok()) {
      errors_.Error(errors_.PosFor(memory_max), errors_.Display(memory_max),
                    absl::StrCat(Quote(step.memory_max()),
                                 " is not a size (expected bytes with an optional K, M, G or T "
                                 "suffix: 64M, 1G)"));
    }
    if (errors_.MarkedBad(path)) return;
    for (const auto& [kind, field] : kControllerFields) {
      std::string f = absl::StrCat(path, ".", kind, ".", field);
      if (errors_.Given(f)) {
        errors_.Error(
            errors_.PosFor(f), f,
            absl::StrCat("is filled in by the controller (expected ",
                         field == absl::string_view("source") ? "the job's kernel: field instead"
                                                              : absl::StrCat("no ", field),
                         ")"));
      }
    }
    switch (step.kind_case()) {
      case v1::Step::kExec:
        if (!errors_.Poisoned(Join(path, "exec"))) CheckExec(step.exec(), Join(path, "exec"));
        break;
      case v1::Step::kKernelBuild: {
        std::string kind = Join(path, "kernel_build");
        if (i != 0) {
          errors_.Error(
              errors_.PosFor(kind), kind,
              absl::StrCat("is step ", i + 1,
                           " (expected kernel_build only as the first step: it builds once, "
                           "before the steps that install the kernel)"));
        } else if (!spec.has_kernel() && !errors_.Poisoned("kernel")) {
          errors_.Error(
              errors_.PosFor(kind), kind,
              "has no kernel to build (expected the job's kernel: {tree: /src/linux, ...} "
              "beside steps)");
        }
        break;
      }
      case v1::Step::kKernelInstall: {
        std::string kind = Join(path, "kernel_install");
        if (!build_before && kinds_known) {
          errors_.Error(
              errors_.PosFor(kind), kind,
              "has no kernel to install (expected a kernel_build step before it, as the first "
              "step)");
        }
        break;
      }
      case v1::Step::kTest:
        if (!errors_.Poisoned(Join(path, "test"))) CheckTest(step.test(), Join(path, "test"));
        break;
      case v1::Step::kReboot:
      case v1::Step::KIND_NOT_SET:
        break;
    }
  }

  void CheckTest(const v1::TestStep& test, const std::string& path) {
    std::string suite = Join(path, "suite");
    static const char* const kSuites[] = {"kselftest", "fstests", "blktests", "exec"};
    if (std::find(std::begin(kSuites), std::end(kSuites), test.suite()) == std::end(kSuites)) {
      errors_.Error(
          errors_.PosFor(errors_.Given(suite) ? suite : path), errors_.Given(suite) ? suite : path,
          absl::StrCat(test.suite().empty() ? std::string("has no suite")
                                            : absl::StrCat(Quote(test.suite()), " is not a suite"),
                       " (expected suite: kselftest, fstests, blktests or exec)"));
      return;
    }
    if (test.suite() == "exec" && test.argv().empty()) {
      errors_.Error(errors_.PosFor(path), path,
                    "has no argv (expected the command that runs a test, e.g. argv: [./run, "
                    "\"{test}\"])");
    }
    if (test.suite() == "kselftest" && test.kselftest().targets().empty() && test.tests().empty()) {
      errors_.Error(errors_.PosFor(path), path,
                    "runs no kselftest (expected kselftest: {targets: [size, timers]} or tests)");
    }
    if (test.suite() == "fstests" && test.fstests().tree().empty()) {
      errors_.Error(errors_.PosFor(path), path,
                    "has no fstests tree (expected fstests: {tree: /path/or/git-url, fstype: "
                    "xfs})");
    }
  }

  void CheckExec(const v1::ExecStep& exec, const std::string& path) {
    std::string argv = Join(path, "argv");
    if (exec.argv().empty()) {
      errors_.Error(errors_.PosFor(argv), errors_.Given(argv) ? argv : path,
                    absl::StrCat(errors_.Given(argv) ? "is empty" : "has no argv",
                                 " (expected a command: exec: [uname, -r], exec: \"uname -r\" or "
                                 "exec: {argv: [uname, -r]})"));
    } else if (exec.argv(0).empty()) {
      std::string first = absl::StrCat(argv, "[0]");
      errors_.Error(errors_.PosFor(first), first,
                    "is empty (expected the program to run, e.g. uname)");
    } else if (exec.argv_size() > kMaxArgs) {
      errors_.Error(
          errors_.PosFor(argv), argv,
          absl::StrCat("has ", exec.argv_size(), " words (expected at most ", kMaxArgs, ")"));
    }
    for (const auto& [key, value] : exec.env()) {
      if (key.empty() || key.find('=') != std::string::npos) {
        std::string var = JoinKey(Join(path, "env"), key);
        errors_.Error(
            errors_.PosFor(var), var,
            absl::StrCat(Quote(key), " is not a variable name (expected a name without =)"));
      }
    }
  }

  YamlErrors& errors_;
};

}  // namespace

void CheckJobSpec(const v1::JobSpec& spec, YamlErrors* errors) { SpecChecker(errors).Check(spec); }

}  // namespace kfleet::cli::internal

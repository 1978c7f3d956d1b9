// The blktests suite: a config file (TEST_DEVS and the step's variables) in the work directory,
// then ./check -c CONFIG -o RESULTS [tests] in the tree. check's stdout streams through
// BlktestsOutputParser; the results directory, read at the end, adds what stdout did not show.
//
// Names: "group/NNN"; a test that ran against a device (or under a condition such as tr=loop)
// is "group/NNN@DEVICE[_CONDITION]" unless the step has a single device, so that a test run once
// per device is reported once per device.
#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/suites/blktests_results.h"
#include "agent/suites/suite_run.h"
#include "common/files.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;

std::string Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

// The name a result is reported under; `r.section` is the parser's device directory.
std::string NameOf(const TestResult& r, const v1::BlktestsOptions& o) {
  absl::string_view where = r.section;
  if (o.devices_size() <= 1) {
    const std::string sole = o.devices_size() == 1 ? Basename(o.devices(0)) : "";
    if (where == sole || where == "nodev") return r.name;
    if (!sole.empty() && absl::ConsumePrefix(&where, sole + "_")) {
      return absl::StrCat(r.name, "@", where);
    }
  }
  absl::ConsumePrefix(&where, "nodev_");
  return where.empty() ? r.name : absl::StrCat(r.name, "@", where);
}

bool IsTestFile(absl::string_view name) {
  return name.size() == 3 && std::all_of(name.begin(), name.end(), absl::ascii_isdigit);
}

// The tests of the tree (tests/GROUP/NNN), those selected by `wanted` (names or groups; empty:
// all), in order.
std::vector<std::string> ListTree(const std::string& tree, const v1::TestStep& step) {
  std::vector<std::string> all;
  std::error_code ec;
  for (const auto& group : std::filesystem::directory_iterator(tree + "/tests", ec)) {
    if (!group.is_directory(ec)) continue;
    const std::string g = group.path().filename().string();
    for (const auto& test : std::filesystem::directory_iterator(group.path(), ec)) {
      const std::string t = test.path().filename().string();
      if (IsTestFile(t)) all.push_back(absl::StrCat(g, "/", t));
    }
  }
  std::sort(all.begin(), all.end());
  if (step.tests().empty()) return all;
  std::vector<std::string> picked;
  for (const std::string& name : all) {
    for (const std::string& want : step.tests()) {
      if (name == want || absl::StartsWith(name, absl::StrCat(want, "/"))) {
        picked.push_back(name);
        break;
      }
    }
  }
  return picked;
}

}  // namespace

v1::CommandResult RunBlktestsSuite(const v1::TestStep& step, const TestStepContext& ctx) {
  const absl::Time start = absl::Now();
  const v1::BlktestsOptions& o = step.blktests();
  if (o.tree().empty()) {
    return InfraError("blktests step needs blktests.tree: a built blktests tree on the host");
  }
  if (!IsExecutableFile(o.tree() + "/check")) {
    return InfraError(absl::StrCat("blktests.tree ", o.tree(),
                                   " has no executable ./check: point it at a blktests tree "
                                   "built with make"));
  }
  if (step.list_only()) {
    v1::CommandResult r;
    r.set_verdict(v1::PASS);
    r.set_exit_code(0);
    for (std::string& name : ListTree(o.tree(), step)) r.add_listed_tests(std::move(name));
    return r;
  }
  std::string config = "TEST_DEVS=(";
  for (const std::string& dev : o.devices()) {
    if (absl::Status s = CheckConfigValue("TEST_DEVS", dev);
        !s.ok() || absl::StrContains(dev, ' ')) {
      return InfraError(absl::StrCat("blktests device \"", dev, "\" is not a plain path"));
    }
    absl::StrAppend(&config, " \"", dev, "\"");
  }
  absl::StrAppend(&config, " )\n");
  for (const auto& [key, value] : o.config()) {
    if (absl::Status s = CheckConfigValue(key, value); !s.ok()) {
      return InfraError(absl::StrCat("blktests config: ", s.message()));
    }
    absl::StrAppend(&config, key, "=\"", value, "\"\n");
  }
  const std::string config_file = ctx.work_dir + "/config";
  const std::string results = ctx.work_dir + "/results";
  if (absl::Status s = WriteFileAtomic(config_file, config); !s.ok()) {
    return InfraError(std::string(s.message()));
  }
  RunSpec spec;
  spec.argv = {"./check", "-c", config_file, "-o", results};
  spec.argv.insert(spec.argv.end(), step.tests().begin(), step.tests().end());
  spec.env.insert(step.env().begin(), step.env().end());
  spec.dir = o.tree();
  Say(ctx, absl::StrCat("blktests in ", o.tree(), ": ", absl::StrJoin(spec.argv, " ")));

  TestReporter reporter(step, kBlktestsSuite, step.section(), ctx);
  std::vector<TestResult> failed;  // for their files, with the device directory as section
  auto report = [&](std::vector<TestResult> batch) {
    ReportKeepingFailures(reporter, std::move(batch), &failed,
                          [&](const TestResult& r) { return NameOf(r, o); });
  };
  BlktestsOutputParser parser;
  PhaseOutput phase = RunParsedPhase(ctx, spec, parser, reporter, report);
  absl::StatusOr<std::vector<TestResult>> stored = ReadBlktestsResults(results);
  if (stored.ok()) {
    report(*std::move(stored));
  } else {
    Say(ctx, absl::StrCat("blktests results: ", stored.status().message()));
  }
  UploadResultFiles(ctx, results, BlktestsFailureFiles(results, failed));
  v1::CommandResult total;
  AddUsage(phase.result, &total);
  return StepResult(phase.result, total, reporter,
                    "blktests ran no test: check the tests' names and TEST_DEVS", phase.stderr_tail,
                    start);
}

}  // namespace kfleet::agent

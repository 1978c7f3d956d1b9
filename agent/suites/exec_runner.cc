// The exec suite: a command per test (argv with "{test}" replaced by the test's name), or one
// command that is the test. Exit 0 passes, exit 4 (kselftest's KSFT_SKIP) skips, anything else
// fails.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "agent/suites/suite_run.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;

constexpr int kSkipExitCode = 4;

std::string Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

// One test from how its command ended.
TestResult Judge(const std::string& name, const v1::CommandResult& phase,
                 const std::string& stderr_tail) {
  TestResult t{"exec", "", name, TestStatus::kFail, phase.wall_ms(), ""};
  if (phase.verdict() == v1::PASS) {
    t.status = TestStatus::kPass;
    return t;
  }
  if (Interrupted(phase) || phase.verdict() == v1::INFRA_ERROR) {
    t.status = TestStatus::kError;
    t.detail = phase.detail();
  } else if (phase.exit_code() == kSkipExitCode && phase.signal() == 0 && !phase.oom_killed()) {
    t.status = TestStatus::kSkip;
    t.detail = "skipped (exit 4)";
  } else {
    t.detail = phase.detail();
  }
  if (!stderr_tail.empty()) absl::StrAppend(&t.detail, "\n", stderr_tail);
  return t;
}

}  // namespace

v1::CommandResult RunExecSuite(const v1::TestStep& step, const TestStepContext& ctx) {
  const absl::Time start = absl::Now();
  if (step.argv().empty()) {
    return InfraError("exec test step has no argv: give the command to run for each test");
  }
  std::vector<std::string> names(step.tests().begin(), step.tests().end());
  const bool per_test = !names.empty();
  if (!per_test) names.push_back(step.section().empty() ? Basename(step.argv(0)) : step.section());
  if (step.list_only()) {
    v1::CommandResult r;
    r.set_verdict(v1::PASS);
    r.set_exit_code(0);
    for (const std::string& name : names) r.add_listed_tests(name);
    return r;
  }
  TestReporter reporter(step, "exec", step.section(), ctx);
  v1::CommandResult total, last;
  std::string last_tail;
  for (const std::string& name : names) {
    RunSpec spec;
    for (const std::string& arg : step.argv()) {
      spec.argv.push_back(per_test ? absl::StrReplaceAll(arg, {{"{test}", name}}) : arg);
    }
    spec.env.insert(step.env().begin(), step.env().end());
    spec.env["TEST_NAME"] = name;
    spec.dir = ctx.work_dir;
    SuiteSink sink(ctx.log);
    last = ctx.run_phase(spec, &sink);
    sink.Finish();
    AddUsage(last, &total);
    last_tail = sink.StderrTail();
    // A program that is not there fails every test the same way: the suite cannot run.
    const bool missing = last.exit_code() == 127 && absl::StartsWith(last.detail(), "cannot run");
    TestResult t = Judge(name, last, last_tail);
    if (missing) t.status = TestStatus::kError;
    reporter.Report(std::move(t));
    if (missing) {
      v1::CommandResult r = InfraError("");
      reporter.Summarize(&r);
      r.set_verdict(v1::INFRA_ERROR);
      r.set_exit_code(127);
      r.set_detail(absl::StrCat(last.detail(), ": install it on the host or fix the step's argv"));
      return r;
    }
    if (Interrupted(last) || last.verdict() == v1::INFRA_ERROR) break;
  }
  v1::CommandResult result = StepResult(last, total, reporter, "", last_tail, start);
  if (!Interrupted(last) && last.verdict() != v1::INFRA_ERROR) {
    result.set_exit_code(per_test ? 0 : last.exit_code());
  }
  return result;
}

}  // namespace kfleet::agent

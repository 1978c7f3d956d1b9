#include "agent/suites/test_runner.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "agent/suites/suite_run.h"
#include "common/files.h"

namespace kfleet::agent {

namespace v1 = kfleet::v1;

v1::CommandResult RunTestStep(const v1::TestStep& step, const TestStepContext& ctx) {
  if (ctx.work_dir.empty() || !ctx.run_phase) {
    return InfraError("this kfleet-agent has no work directory for test steps");
  }
  std::error_code ec;
  std::filesystem::remove_all(ctx.work_dir, ec);
  if (absl::Status s = MakeDirs(ctx.work_dir); !s.ok()) {
    return InfraError(absl::StrCat("cannot make the test step's work directory: ", s.message()));
  }
  const std::string& suite = step.suite();
  if (suite == "exec") return RunExecSuite(step, ctx);
  if (suite == "kselftest") return RunKselftestSuite(step, ctx);
  if (suite == "fstests") return RunFstestsSuite(step, ctx);
  if (suite == "blktests") return RunBlktestsSuite(step, ctx);
  return InfraError(absl::StrCat("test step: unknown suite \"", suite,
                                 "\" (expected one of kselftest, fstests, blktests, exec); "
                                 "fix the job spec, or upgrade this kfleet-agent"));
}

}  // namespace kfleet::agent

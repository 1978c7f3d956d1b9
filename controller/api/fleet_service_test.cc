#include "controller/api/fleet_service.h"

#include <gtest/gtest.h>

namespace kfleet::controller {
namespace {

v1::JobSpec Good() {
  v1::JobSpec spec;
  spec.mutable_hosts()->set_all(true);
  v1::Step* step = spec.add_steps();
  step->mutable_exec()->add_argv("uname");
  step->set_timeout("30s");
  return spec;
}

// Validates that job specs are checked field by field, and that errors name the field and fix.
TEST(ValidateJobSpecTest, NamesTheField) {
  EXPECT_TRUE(ValidateJobSpec(Good()).ok());

  v1::JobSpec no_steps = Good();
  no_steps.clear_steps();
  EXPECT_NE(ValidateJobSpec(no_steps).message().find("steps is empty"), std::string::npos);

  v1::JobSpec bad_timeout = Good();
  bad_timeout.mutable_steps(0)->set_timeout("soon");
  EXPECT_NE(ValidateJobSpec(bad_timeout).message().find("steps[0].timeout"), std::string::npos);

  v1::JobSpec empty_argv = Good();
  empty_argv.mutable_steps(0)->mutable_exec()->clear_argv();
  EXPECT_NE(ValidateJobSpec(empty_argv).message().find("steps[0].exec.argv is empty"),
            std::string::npos);

  v1::JobSpec two_selectors = Good();
  two_selectors.mutable_hosts()->add_names("a");
  EXPECT_NE(ValidateJobSpec(two_selectors).message().find("exactly one of all, names or labels"),
            std::string::npos);

  v1::JobSpec bad_name = Good();
  bad_name.mutable_hosts()->set_all(false);
  bad_name.mutable_hosts()->add_names("../x");
  EXPECT_EQ(ValidateJobSpec(bad_name).code(), absl::StatusCode::kInvalidArgument);

  v1::JobSpec no_kind = Good();
  no_kind.mutable_steps(0)->clear_exec();
  EXPECT_NE(ValidateJobSpec(no_kind).message().find("no step kind"), std::string::npos);
}

}  // namespace
}  // namespace kfleet::controller

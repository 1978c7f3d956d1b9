#include "common/flag_names.h"

#include <gtest/gtest.h>

namespace kfleet {
namespace {

// Validates that dashed flag names become absl's underscored ones and nothing else changes.
TEST(FlagNamesTest, DashesInNamesOnly) {
  const char* argv[] = {"prog", "--state-dir=/a-b", "--metrics-listen", "x-y", "-o",
                        "--",   "--not-a-flag"};
  auto out = DashFlagsToUnderscores(7, const_cast<char**>(argv));
  std::vector<std::string> want = {"prog", "--state_dir=/a-b", "--metrics_listen", "x-y", "-o",
                                   "--",   "--not-a-flag"};
  EXPECT_EQ(out, want);
}

}  // namespace
}  // namespace kfleet

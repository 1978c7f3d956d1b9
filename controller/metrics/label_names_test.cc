#include "controller/metrics/label_names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kfleet::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// Validates the label name grammar, "__" reserved.
TEST(MetricsLabelNamesTest, Validity) {
  EXPECT_TRUE(IsValidLabelName("device"));
  EXPECT_TRUE(IsValidLabelName("_x1"));
  EXPECT_FALSE(IsValidLabelName(""));
  EXPECT_FALSE(IsValidLabelName("1cpu"));
  EXPECT_FALSE(IsValidLabelName("kfleet.io/pool"));
  EXPECT_FALSE(IsValidLabelName("__name__"));
}

// Validates that sanitized names are valid ones.
TEST(MetricsLabelNamesTest, Sanitize) {
  EXPECT_EQ(SanitizeLabelName("kfleet.io/pool"), "kfleet_io_pool");
  EXPECT_EQ(SanitizeLabelName("9lives"), "_9lives");
  EXPECT_EQ(SanitizeLabelName(""), "_");
  EXPECT_EQ(SanitizeLabelName("ok_name"), "ok_name");
}

// Validates that host labels cannot displace instance/host, set Prometheus' "__" labels, or
// collide after sanitizing.
TEST(MetricsLabelNamesTest, TargetLabels) {
  EXPECT_THAT(
      TargetLabels("guest-1", {{"pool", "local"},
                               {"instance", "spoof"},
                               {"__scheme__", "https"},
                               {"a-b", "first"},
                               {"a.b", "second"},
                               {"team name", "kernel"}}),
      ElementsAre(Pair("a_b", "first"), Pair("host", "guest-1"), Pair("instance", "guest-1"),
                  Pair("pool", "local"), Pair("team_name", "kernel")));
}

}  // namespace
}  // namespace kfleet::controller

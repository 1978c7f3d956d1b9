#include "common/duration.h"

#include <gtest/gtest.h>

namespace kfleet {
namespace {

// Validates that the forms of the command-line contract parse and nonsense is refused with a hint.
TEST(DurationTest, ParsesContractForms) {
  EXPECT_EQ(*ParseDuration("30s"), absl::Seconds(30));
  EXPECT_EQ(*ParseDuration("5m"), absl::Minutes(5));
  EXPECT_EQ(*ParseDuration("2h"), absl::Hours(2));
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("250ms"), absl::Milliseconds(250));
}

TEST(DurationTest, RefusesBadInputWithHint) {
  for (const char* bad : {"", "5", "abc", "-5s", "0s", "inf", "1y"}) {
    auto d = ParseDuration(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("e.g. 500ms, 30s"), absl::string_view::npos);
  }
}

// Validates what "0: never" flags accept: zero in any unit, nothing else.
TEST(DurationTest, ZeroInAnyUnit) {
  for (const char* zero : {"0", "0s", "0ms", "0h"}) EXPECT_TRUE(IsZeroDuration(zero)) << zero;
  for (const char* other :
       {"", "1s", "-0.5s", "never", "0x", "00000000000000000000000000000000000s"}) {
    EXPECT_FALSE(IsZeroDuration(other)) << other;
  }
}

TEST(DurationTest, FormatsShort) {
  EXPECT_EQ(ShortDuration(absl::Milliseconds(250)), "250ms");
  EXPECT_EQ(ShortDuration(absl::Milliseconds(2500)), "2.5s");
  EXPECT_EQ(ShortDuration(absl::Seconds(42)), "42s");
  EXPECT_EQ(ShortDuration(absl::Seconds(90)), "1m30s");
  EXPECT_EQ(ShortDuration(absl::Hours(2)), "2h");
}

}  // namespace
}  // namespace kfleet

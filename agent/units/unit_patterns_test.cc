#include "agent/units/unit_patterns.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(UnitPatternsTest, ParsesCommaSeparatedGlobs) {
  auto p = ParseUnitPatterns("mbsync@*.service, offlineimap*.service");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ElementsAre("mbsync@*.service", "offlineimap*.service"));
}

TEST(UnitPatternsTest, MatchesServicesOnly) {
  std::vector<std::string> p = {"mbsync@*.service", "backup*"};
  EXPECT_TRUE(UnitMatches(p, "mbsync@work.service"));
  EXPECT_FALSE(UnitMatches(p, "mbsync@work.timer"));
  EXPECT_FALSE(UnitMatches(p, "mbsync.service"));
  EXPECT_TRUE(UnitMatches(p, "backup-home.service"));
  // "backup*" would match the timer by name, but timers have no runs of their own.
  EXPECT_FALSE(UnitMatches(p, "backup-home.timer"));
}

TEST(UnitPatternsTest, RefusesWhatNamesNoService) {
  auto p = ParseUnitPatterns("mbsync@*.timer");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("\"mbsync@*.timer\" names no service"));
  EXPECT_THAT(p.status().message(), HasSubstr("end it in \".service\""));
}

TEST(UnitPatternsTest, RefusesEmptyPartsAndStrangeCharacters) {
  EXPECT_THAT(ParseUnitPatterns("a.service,,b.service").status().message(),
              HasSubstr("empty pattern"));
  EXPECT_THAT(ParseUnitPatterns("").status().message(), HasSubstr("empty pattern"));
  EXPECT_THAT(ParseUnitPatterns("a b.service").status().message(),
              HasSubstr("has the character ' '"));
  EXPECT_THAT(ParseUnitPatterns("a/b.service").status().message(),
              HasSubstr("has the character '/'"));
}

TEST(UnitPatternsTest, IsBounded) {
  std::string many;
  for (size_t i = 0; i <= kMaxUnitPatterns; ++i) absl::StrAppend(&many, i ? "," : "", "u", i, "*");
  EXPECT_THAT(ParseUnitPatterns(many).status().message(), HasSubstr("more than 32 patterns"));
  std::string long_one(kMaxUnitPatternBytes, 'a');
  absl::StrAppend(&long_one, ".service");
  EXPECT_THAT(ParseUnitPatterns(long_one).status().message(), HasSubstr("longer than 256"));
}

}  // namespace
}  // namespace kfleet::agent

#include "cli/host_selector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// Validates that exactly one kind of selector is accepted.
TEST(HostSelectorTest, ExactlyOne) {
  EXPECT_TRUE(BuildHostSelector(true, {}, {})->all());
  EXPECT_THAT(BuildHostSelector(false, {"a", "b,a"}, {})->names(), ElementsAre("a", "b"));
  EXPECT_THAT(BuildHostSelector(false, {}, {}).status().message(), HasSubstr("no hosts chosen"));
  EXPECT_THAT(BuildHostSelector(true, {"a"}, {}).status().message(),
              HasSubstr("cannot be combined"));
  EXPECT_THAT(BuildHostSelector(false, {"a"}, {"k=v"}).status().message(),
              HasSubstr("exactly one of --all, --host NAME"));
  EXPECT_THAT(BuildHostSelector(false, {"a,,b"}, {}).status().message(), HasSubstr("empty host"));
}

// Validates label merging, repeats and conflicts.
TEST(HostSelectorTest, Labels) {
  auto s = BuildHostSelector(false, {}, {"a=1,b=2", "c=3", "a=1"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->labels(), UnorderedElementsAre(Pair("a", "1"), Pair("b", "2"), Pair("c", "3")));
  EXPECT_EQ(BuildHostSelector(false, {}, {"a=1", "a=2"}).status().message(),
            "-l: label \"a\" is given twice, as \"1\" and \"2\"; a host has one value per label");
  EXPECT_THAT(BuildHostSelector(false, {}, {"pool"}).status().message(),
              HasSubstr("\"pool\" is not KEY=VALUE"));
  EXPECT_THAT(BuildHostSelector(false, {}, {"=x"}).status().message(), HasSubstr("not KEY=VALUE"));
  EXPECT_THAT(BuildHostSelector(false, {}, {"k="}).status().message(), HasSubstr("not KEY=VALUE"));
}

}  // namespace
}  // namespace kfleet::cli

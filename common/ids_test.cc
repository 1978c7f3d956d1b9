#include "common/ids.h"

#include <gtest/gtest.h>

#include <set>

namespace kfleet {
namespace {

// Validates that ids are unique, prefixed and safe as file names, and that unsafe names are
// refused.
TEST(IdsTest, NewIdsAreUniqueAndValid) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewId("j-");
    EXPECT_EQ(id.size(), 18u);
    EXPECT_EQ(id.substr(0, 2), "j-");
    EXPECT_TRUE(IsValidId(id));
    EXPECT_TRUE(seen.insert(id).second);
  }
}

TEST(IdsTest, RefusesTraversalAndOddCharacters) {
  for (const char* bad : {"", ".", "..", "../etc", "a/b", "a b", "x\n"}) {
    EXPECT_FALSE(IsValidId(bad)) << bad;
  }
  EXPECT_FALSE(IsValidId(std::string(65, 'a')));
}

}  // namespace
}  // namespace kfleet

#include "cli/suggest.h"

#include <gtest/gtest.h>

namespace kfleet::cli {
namespace {

// Validates the edit distance, with a transposition counted as one edit.
TEST(SuggestTest, EditDistance) {
  EXPECT_EQ(EditDistance("hosts", "hosts"), 0u);
  EXPECT_EQ(EditDistance("hsots", "hosts"), 1u);
  EXPECT_EQ(EditDistance("host", "hosts"), 1u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

// Validates that close words and unique prefixes are suggested, and far ones are not.
TEST(SuggestTest, Closest) {
  std::vector<std::string> commands = {"hosts", "exec", "jobs", "job", "logs", "cancel"};
  EXPECT_EQ(SuggestClosest("hsots", commands), "hosts");
  EXPECT_EQ(SuggestClosest("exce", commands), "exec");
  EXPECT_EQ(SuggestClosest("canc", commands), "cancel");
  EXPECT_EQ(SuggestClosest("xyz", commands), std::nullopt);
  EXPECT_EQ(SuggestClosest("", commands), std::nullopt);
  EXPECT_EQ(DidYouMean("lgos", commands), " (did you mean \"logs\"?)");
  EXPECT_EQ(DidYouMean("zzzzzz", commands), "");
}

}  // namespace
}  // namespace kfleet::cli

#include "cli/line_prefixer.h"

#include <gtest/gtest.h>

#include <sstream>

namespace kfleet::cli {
namespace {

class LinePrefixerTest : public ::testing::Test {
 protected:
  std::ostringstream out_;
  std::ostringstream err_;
};

// Validates that lines cut across chunks come out whole, prefixed and padded to the longest host.
TEST_F(LinePrefixerTest, JoinsPartialLines) {
  LinePrefixer p(out_, err_);
  p.AddHost("host-long");
  p.Write("c-1", 1, "a", false, "hel");
  EXPECT_EQ(out_.str(), "");
  p.Write("c-1", 1, "a", false, "lo\nwor");
  EXPECT_EQ(out_.str(), "a         | hello\n");
  p.Write("c-2", 1, "host-long", false, "one\ntwo\n");
  p.Write("c-1", 1, "a", false, "ld\n");
  EXPECT_EQ(out_.str(),
            "a         | hello\n"
            "host-long | one\n"
            "host-long | two\n"
            "a         | world\n");
  EXPECT_EQ(err_.str(), "");
}

// Validates that stdout and stderr of one command are buffered apart and go to their own streams.
TEST_F(LinePrefixerTest, StreamsApart) {
  LinePrefixer p(out_, err_);
  p.Write("c-1", 1, "h", false, "out-");
  p.Write("c-1", 2, "h", true, "err-");
  p.Write("c-1", 1, "h", false, "line\n");
  p.Write("c-1", 2, "h", true, "line\n");
  EXPECT_EQ(out_.str(), "h | out-line\n");
  EXPECT_EQ(err_.str(), "h | err-line\n");
}

// Validates that Flush prints what is left with a newline, in the order output began, once;
// complete lines are not held back for it.
TEST_F(LinePrefixerTest, FlushRemainder) {
  LinePrefixer p(out_, err_);
  p.Write("c-2", 1, "bb", false, "no newline");
  p.Write("c-1", 1, "a", false, "done\nhalf");
  p.Write("c-3", 1, "c", false, "complete\n");
  p.Flush();
  p.Flush();
  EXPECT_EQ(out_.str(),
            "a  | done\n"
            "c  | complete\n"
            "bb | no newline\n"
            "a  | half\n");
}

// Validates that empty lines survive and a chunk of only a newline ends the pending line.
TEST_F(LinePrefixerTest, EmptyLines) {
  LinePrefixer p(out_, err_);
  p.Write("c-1", 1, "h", false, "\n\nx");
  p.Write("c-1", 1, "h", false, "\n");
  EXPECT_EQ(out_.str(), "h | \nh | \nh | x\n");
}

// Validates that output without newlines is printed in pieces rather than held without bound.
TEST_F(LinePrefixerTest, LongLinesAreCut) {
  LinePrefixer p(out_, err_, /*max_line_bytes=*/4);
  p.Write("c-1", 1, "h", false, "abcdefghij");
  EXPECT_EQ(out_.str(), "h | abcd\nh | efgh\n");
  p.Flush();
  EXPECT_EQ(out_.str(), "h | abcd\nh | efgh\nh | ij\n");
}

}  // namespace
}  // namespace kfleet::cli

#include "common/roff.h"

#include <gtest/gtest.h>

namespace kfleet {
namespace {

// Validates that text cannot turn into roff requests or escapes, and that `code` is set in bold.
TEST(RoffTest, EscapesTextAndBoldsCode) {
  EXPECT_EQ(RoffEscape("--state-dir C:\\x"), "\\-\\-state\\-dir C:\\ex");
  EXPECT_EQ(RoffEscape(".TH x\n'quote"), "\\&.TH x\n\\&'quote");
  EXPECT_EQ(RoffEscape("use `kctl hosts` now"), "use \\fBkctl hosts\\fR now");
  EXPECT_EQ(RoffEscape("odd `tick"), "odd \\fBtick\\fR");  // never bold past its line
}

// Validates that paragraphs are separated by the separator and examples are not filled.
TEST(RoffTest, ParagraphsAndPreformattedLines) {
  EXPECT_EQ(RoffParagraphs("one\ntwo\n\nthree\n"), "one\ntwo\n.PP\nthree\n");
  EXPECT_EQ(RoffParagraphs("a\n\nb", ".IP"), "a\n.IP\nb\n");
  EXPECT_EQ(RoffParagraphs("Run:\n  kctl hosts\nthen"), "Run:\n.nf\n  kctl hosts\n.fi\nthen\n");
  EXPECT_EQ(RoffParagraphs(""), "");
}

// Validates that the title line carries no date, so that a version's page is always the same.
TEST(RoffTest, TitleHasNoDate) {
  EXPECT_EQ(RoffTitle("kfleet-agent", 8, "0.1.0"),
            ".TH \"KFLEET-AGENT\" \"8\" \"\" \"kfleet 0.1.0\" \"kfleet manual\"\n");
}

}  // namespace
}  // namespace kfleet

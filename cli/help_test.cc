#include "cli/help.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "cli/kctl.h"

namespace kfleet::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Validates that every command's page has the sections of a man page, lines fit 100 columns, and
// hidden flags stay out.
TEST(HelpTest, EveryCommandHasAPage) {
  for (const CommandSpec& c : AllCommands()) {
    std::string page = RenderCommandHelp(c);
    SCOPED_TRACE(c.name);
    EXPECT_THAT(page, HasSubstr("NAME\n    kctl " + c.name + " - "));
    EXPECT_THAT(page, HasSubstr("SYNOPSIS\n    kctl " + c.name));
    EXPECT_THAT(page, HasSubstr("DESCRIPTION\n"));
    EXPECT_THAT(page, HasSubstr("EXIT STATUS\n"));
    EXPECT_THAT(page, HasSubstr("EXAMPLES\n    kctl " + c.name));
    for (const FlagSpec& f : c.flags) {
      if (f.hidden) {
        EXPECT_THAT(page, Not(HasSubstr("--" + f.name)));
      }
    }
    for (absl::string_view line : absl::StrSplit(page, '\n')) EXPECT_LE(line.size(), 100u) << line;
  }
}

// Validates that the overview lists every command and every exit code.
TEST(HelpTest, Overview) {
  std::string page = RenderOverview(AllCommands());
  for (const CommandSpec& c : AllCommands()) EXPECT_THAT(page, HasSubstr("\n    " + c.name + " "));
  for (int code = 0; code <= 9; ++code) {
    EXPECT_THAT(page, HasSubstr("\n    " + std::to_string(code) + "   "));
  }
  EXPECT_THAT(page, HasSubstr("KFLEET_CONTROLLER"));
  EXPECT_THAT(page, HasSubstr("kctl.yaml"));
  EXPECT_THAT(page, HasSubstr("KFLEET_CONFIG"));
  EXPECT_THAT(page, HasSubstr("--config FILE"));
  EXPECT_THAT(page,
              HasSubstr("\n    9   refused: not authenticated, or the role does not allow it"));
}

// Validates word wrapping, paragraphs and preformatted lines.
TEST(HelpTest, Wrap) {
  EXPECT_EQ(Wrap("aaa bbb ccc ddd", 2, 10), "  aaa bbb\n  ccc ddd\n");
  EXPECT_EQ(Wrap("one\n\ntwo", 0), "one\n\ntwo\n");
  EXPECT_EQ(Wrap("intro:\n    keep   this", 1), " intro:\n     keep   this\n");
}

}  // namespace
}  // namespace kfleet::cli

#include "cli/man_page.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "cli/kctl.h"

namespace kfleet::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ManFlag(const std::string& name) {
  return absl::StrCat("\\fB", absl::StrReplaceAll(absl::StrCat("--", name), {{"-", "\\-"}}),
                      "\\fR");
}

// Validates that kctl(1) has the sections of a section 1 page and a subsection per command with
// its synopsis, every documented flag (hidden ones left out), exit status and examples.
TEST(ManPageTest, EveryCommandAndFlag) {
  std::string page = RenderKctlManPage(AllCommands(), "1.2.3");
  EXPECT_EQ(page.rfind(".TH \"KCTL\" \"1\" \"\" \"kfleet 1.2.3\"", 0), 0u);
  for (const char* section :
       {"\n.SH NAME\nkctl \\- run commands", "\n.SH SYNOPSIS\n.B kctl\n[\\-\\-controller",
        "\n.SH DESCRIPTION\n", "\n.SH \"GLOBAL OPTIONS\"\n", "\n.SH COMMANDS\n",
        "\n.SH ENVIRONMENT\n.TP\n.B KFLEET_CONFIG\n", "\n.SH FILES\n", "kctl.yaml",
        "\n.SH \"EXIT STATUS\"\n.TP\n.B 0\n", "\n.B 9\nrefused: not authenticated",
        "\n.SH \"SEE ALSO\"\n.BR kfleet\\-controller (8),\n"}) {
    EXPECT_THAT(page, HasSubstr(section));
  }
  for (const CommandSpec& c : AllCommands()) {
    SCOPED_TRACE(c.name);
    std::string escaped = absl::StrReplaceAll(c.name, {{"-", "\\-"}});
    EXPECT_THAT(page,
                HasSubstr(absl::StrCat("\n.SS \"", escaped, "\"\n.B \"kctl ", escaped, "\"\n")));
    for (const FlagSpec& f : c.flags) {
      if (f.hidden) continue;
      EXPECT_THAT(page, HasSubstr(ManFlag(f.name))) << f.name;
    }
  }
  for (const FlagSpec& f : GlobalFlags()) EXPECT_THAT(page, HasSubstr(ManFlag(f.name)));
}

// Validates that nothing in the text reads as a roff request or break: no blank lines, and lines
// that start with a space or a period only where they are meant to (inside .nf blocks, requests).
TEST(ManPageTest, NoStrayRoff) {
  std::string page = RenderKctlManPage(AllCommands(), "1.2.3");
  bool nofill = false;
  for (absl::string_view line : absl::StrSplit(page, '\n', absl::SkipEmpty())) {
    if (line == ".nf") nofill = true;
    if (line == ".fi") nofill = false;
    if (!nofill) {
      EXPECT_FALSE(absl::StartsWith(line, " ")) << line;
    }
    if (line[0] == '.') {
      EXPECT_TRUE(line == ".nf" || line == ".fi" || line == ".PP" || line == ".IP" ||
                  line == ".TP" || absl::StartsWith(line, ".TH ") ||
                  absl::StartsWith(line, ".SH ") || absl::StartsWith(line, ".SS ") ||
                  absl::StartsWith(line, ".B ") || absl::StartsWith(line, ".BR ") ||
                  absl::StartsWith(line, ".RS ") || line == ".RE")
          << line;
    }
  }
  EXPECT_THAT(page, Not(HasSubstr("\n\n")));
  EXPECT_THAT(page, Not(HasSubstr("\n'")));
}

}  // namespace
}  // namespace kfleet::cli

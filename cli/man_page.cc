#include "cli/man_page.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/exit_codes.h"
#include "cli/help.h"
#include "common/roff.h"

namespace kfleet::cli {
namespace {

// The overview's sections (`kctl --help`), by title, with their 4-column indent taken off: the
// man page says what the help says, without a second copy of the text.
std::map<std::string, std::string> OverviewSections(const std::vector<CommandSpec>& commands) {
  std::map<std::string, std::string> sections;
  std::string* body = nullptr;
  for (absl::string_view line : absl::StrSplit(RenderOverview(commands), '\n')) {
    if (!line.empty() && line[0] != ' ') {
      body = &sections[std::string(line)];
      continue;
    }
    if (body == nullptr) continue;
    absl::ConsumePrefix(&line, "    ");
    absl::StrAppend(body, line, "\n");
  }
  return sections;
}

// An indented list of "term\n    text" (ENVIRONMENT, FILES) as .TP entries.
std::string TaggedList(absl::string_view body) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipWhitespace())) {
    if (line[0] != ' ') {
      absl::StrAppend(&out, ".TP\n.B ", RoffEscape(line), "\n");
    } else {
      absl::StrAppend(&out, RoffEscape(absl::StripLeadingAsciiWhitespace(line)), "\n");
    }
  }
  return out;
}

std::string FlagEntries(const std::vector<FlagSpec>& flags) {
  std::string out;
  for (const FlagSpec& f : flags) {
    if (f.hidden) continue;
    std::string head;
    if (f.short_name != 0)
      absl::StrAppend(&head, "\\fB\\-", std::string(1, f.short_name), "\\fR, ");
    absl::StrAppend(&head, "\\fB", RoffEscape(absl::StrCat("--", f.name)), "\\fR");
    if (!f.value_name.empty()) absl::StrAppend(&head, " \\fI", RoffEscape(f.value_name), "\\fR");
    std::string help = f.help;
    if (f.repeatable) absl::StrAppend(&help, " May be repeated.");
    absl::StrAppend(&out, ".TP\n", head, "\n", RoffParagraphs(help, ".IP"));
  }
  return out;
}

std::string CommandSection(const CommandSpec& c) {
  std::string out =
      absl::StrCat(".SS \"", RoffEscape(c.name), "\"\n.B \"kctl ", RoffEscape(c.name), "\"\n");
  absl::string_view args = absl::StripLeadingAsciiWhitespace(absl::StripPrefix(c.synopsis, c.name));
  if (!args.empty()) absl::StrAppend(&out, RoffEscape(args), "\n");
  absl::StrAppend(&out, ".PP\n", RoffParagraphs(c.description));
  std::string options = FlagEntries(c.flags);
  if (!options.empty()) absl::StrAppend(&out, ".PP\n\\fIOptions:\\fR\n", options);
  if (!c.exit_codes.empty()) {
    absl::StrAppend(&out, ".PP\n\\fIExit status:\\fR\n");
    for (const auto& [code, meaning] : c.exit_codes) {
      absl::StrAppend(&out, ".TP\n.B ", code, "\n",
                      RoffEscape(meaning.empty() ? ExitCodeMeaning(code) : meaning), "\n");
    }
  }
  if (!c.examples.empty()) {
    absl::StrAppend(&out, ".PP\n\\fIExamples:\\fR\n.RS 4\n.nf\n");
    for (absl::string_view line : absl::StrSplit(c.examples, '\n', absl::SkipWhitespace())) {
      absl::StrAppend(&out, RoffEscape(line), "\n");
    }
    absl::StrAppend(&out, ".fi\n.RE\n");
  }
  return out;
}

}  // namespace

std::string RenderKctlManPage(const std::vector<CommandSpec>& commands, absl::string_view version) {
  std::map<std::string, std::string> overview = OverviewSections(commands);
  std::string name = std::string(absl::StripAsciiWhitespace(overview["NAME"]));
  absl::string_view synopsis = absl::StripAsciiWhitespace(overview["SYNOPSIS"]);
  absl::ConsumePrefix(&synopsis, "kctl ");

  std::string out = RoffTitle("kctl", 1, version);
  absl::StrAppend(&out, ".SH NAME\n", RoffEscape(name), "\n");
  absl::StrAppend(&out, ".SH SYNOPSIS\n.B kctl\n", RoffEscape(synopsis), "\n");
  absl::StrAppend(&out, ".SH DESCRIPTION\n", RoffParagraphs(overview["DESCRIPTION"]));
  absl::StrAppend(&out, ".SH \"GLOBAL OPTIONS\"\n", FlagEntries(GlobalFlags()));
  absl::StrAppend(&out, ".SH COMMANDS\n");
  for (const CommandSpec& c : commands) absl::StrAppend(&out, CommandSection(c));
  absl::StrAppend(&out, ".SH ENVIRONMENT\n", TaggedList(overview["ENVIRONMENT"]));
  absl::StrAppend(&out, ".SH FILES\n", TaggedList(overview["FILES"]));
  absl::StrAppend(&out, ".SH \"EXIT STATUS\"\n");
  for (int code = kExitOk; code <= kExitLast; ++code) {
    absl::StrAppend(&out, ".TP\n.B ", code, "\n", RoffEscape(ExitCodeMeaning(code)), "\n");
  }
  absl::StrAppend(&out, ".SH \"SEE ALSO\"\n.BR kfleet\\-controller (8),\n.BR kfleet\\-agent (8)\n");
  return out;
}

}  // namespace kfleet::cli

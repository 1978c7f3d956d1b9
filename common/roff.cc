#include "common/roff.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace kfleet {
namespace {

bool Preformatted(absl::string_view line) { return !line.empty() && line[0] == ' '; }

}  // namespace

std::string RoffEscape(absl::string_view text) {
  std::string out;
  bool line_start = true;
  bool bold = false;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    line_start = c == '\n';
    switch (c) {
      case '\\':
        out += "\\e";
        break;
      case '-':
        out += "\\-";
        break;
      case '`':
        out += bold ? "\\fR" : "\\fB";
        bold = !bold;
        break;
      case '\n':
        // A code span never runs past its line: an unpaired backtick stays in its line.
        if (bold) out += "\\fR";
        bold = false;
        out += c;
        break;
      default:
        out += c;
    }
  }
  if (bold) out += "\\fR";
  return out;
}

std::string RoffParagraphs(absl::string_view text, absl::string_view separator) {
  std::string out;
  std::vector<absl::string_view> paragraphs =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(text), "\n\n", absl::SkipWhitespace());
  for (size_t p = 0; p < paragraphs.size(); ++p) {
    if (p > 0) absl::StrAppend(&out, separator, "\n");
    bool in_block = false;
    for (absl::string_view line : absl::StrSplit(paragraphs[p], '\n')) {
      if (absl::StripAsciiWhitespace(line).empty()) continue;  // blank lines are roff breaks
      if (Preformatted(line) != in_block) {
        in_block = !in_block;
        absl::StrAppend(&out, in_block ? ".nf\n" : ".fi\n");
      }
      absl::StrAppend(&out, RoffEscape(line), "\n");
    }
    if (in_block) absl::StrAppend(&out, ".fi\n");
  }
  return out;
}

std::string RoffTitle(absl::string_view name, int section, absl::string_view version) {
  return absl::StrCat(".TH \"", absl::AsciiStrToUpper(name), "\" \"", section, "\" \"\" \"kfleet ",
                      version, "\" \"kfleet manual\"\n");
}

}  // namespace kfleet

// Text to roff (man(7) macros), for the man pages kfleet's programs print with --man.
#ifndef KFLEET_COMMON_ROFF_H_
#define KFLEET_COMMON_ROFF_H_

#include <string>

#include "absl/strings/string_view.h"

namespace kfleet {

// `text` as roff input text: backslashes and dashes escaped (\e, \-), a `\&` before a leading
// period or apostrophe, and `code` in backticks set in bold. Newlines are kept.
std::string RoffEscape(absl::string_view text);

// Paragraphs of plain text (separated by blank lines) as roff: `separator` (".PP" at the top
// level, ".IP" inside a .TP entry) between paragraphs, and runs of lines that start with a space
// (examples, lists) kept as they are, without filling. Ends with a newline unless
// `text` is empty.
std::string RoffParagraphs(absl::string_view text, absl::string_view separator = ".PP");

// The .TH line of a page: `.TH "KCTL" "1" "" "kfleet 0.1.0" "kfleet manual"`. No date, so that
// the page of a given version is always the same bytes.
std::string RoffTitle(absl::string_view name, int section, absl::string_view version);

}  // namespace kfleet

#endif  // KFLEET_COMMON_ROFF_H_

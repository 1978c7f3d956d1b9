#include "common/expunge_file.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace kfleet {
namespace {

// A file full of mistakes is not worth listing whole: the first ones show what is wrong.
constexpr size_t kMaxErrors = 20;

constexpr absl::string_view kUnassigned = "unassigned";
constexpr absl::string_view kSuffix = ".txt";

bool IsNamePart(absl::string_view part) {
  if (part.empty() || part == "." || part == "..") return false;
  for (char c : part) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// fstests names tests SUITE/NAME: generic/388, xfs/168, ext4/034.
bool IsTestName(absl::string_view test) {
  std::vector<absl::string_view> parts = absl::StrSplit(test, '/');
  return parts.size() == 2 && IsNamePart(parts[0]) && IsNamePart(parts[1]);
}

// What a line that is not a test name looks like, for the error.
std::string Quoted(absl::string_view text) {
  constexpr size_t kMaxShown = 60;
  std::string shown;
  for (char c : text.substr(0, kMaxShown)) {
    shown += absl::ascii_isprint(static_cast<unsigned char>(c)) ? c : '?';
  }
  return absl::StrCat("\"", shown, text.size() > kMaxShown ? "...\"" : "\"");
}

absl::Status CheckPart(absl::string_view what, absl::string_view part) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", Quoted(part), " ", why));
  };
  if (part.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (part == "." || part == "..") return bad("is not a name");
  if (part.size() > kMaxExpungePathPartBytes) {
    return bad(absl::StrCat("is longer than ", kMaxExpungePathPartBytes, " bytes"));
  }
  for (char c : part) {
    if (c == '/' || c == '\0' || absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return bad("has a '/', a NUL or a blank: it must be one path component");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<v1::ExpungeEntry>> ParseExpungeFile(absl::string_view content,
                                                               absl::string_view file_name) {
  if (content.size() > kMaxExpungeFileBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(file_name, ": ", content.size(), " bytes is over the limit of ",
                     kMaxExpungeFileBytes, " bytes for an expunge list: split it by section"));
  }
  std::vector<v1::ExpungeEntry> entries;
  std::set<std::string, std::less<>> seen;
  std::vector<std::string> errors;
  size_t line_number = 0;
  auto error = [&](absl::string_view problem) {
    errors.push_back(absl::StrCat(file_name, ":", line_number, ": ", problem));
  };
  std::vector<absl::string_view> lines = absl::StrSplit(content, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
  for (absl::string_view line : lines) {
    ++line_number;
    if (errors.size() >= kMaxErrors) {
      errors.push_back(
          absl::StrCat(file_name, ": more errors after line ", line_number - 1, " not shown"));
      break;
    }
    if (line.size() > kMaxExpungeLineBytes) {
      error(absl::StrCat("line of ", line.size(), " bytes is over the limit of ",
                         kMaxExpungeLineBytes, ": shorten its comment"));
      continue;
    }
    if (absl::StrContains(line, '\0')) {
      error("the line has a NUL byte: is this a text file?");
      continue;
    }
    absl::string_view test = line;
    absl::string_view comment;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) {
      test = line.substr(0, hash);
      comment = absl::StripAsciiWhitespace(line.substr(hash + 1));
    }
    test = absl::StripAsciiWhitespace(test);
    if (test.empty()) continue;  // a blank line or a comment line
    if (!IsTestName(test)) {
      error(absl::StrCat(Quoted(test),
                         " is not a test name: write one test per line as SUITE/NAME (e.g. "
                         "generic/388), optionally followed by \"# comment\"; start a comment "
                         "line with #"));
      continue;
    }
    if (!seen.insert(std::string(test)).second) continue;
    v1::ExpungeEntry& entry = entries.emplace_back();
    entry.set_test(std::string(test));
    std::string text(comment);
    std::replace(text.begin(), text.end(), '\r', ' ');  // as FormatExpungeFile writes it
    entry.set_comment(std::move(text));
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return entries;
}

std::string FormatExpungeFile(const std::vector<v1::ExpungeEntry>& entries) {
  std::string out;
  for (const v1::ExpungeEntry& e : entries) {
    absl::StrAppend(&out, e.test());
    std::string comment(absl::StripAsciiWhitespace(e.comment()));
    for (char& c : comment) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    if (!comment.empty()) absl::StrAppend(&out, " # ", comment);
    out += '\n';
  }
  return out;
}

std::string ExpungePath(absl::string_view kernel, absl::string_view fs, absl::string_view section) {
  return absl::StrCat(kernel, "/", fs, "/", kUnassigned, "/", section, kSuffix);
}

absl::Status CheckExpungeLocation(absl::string_view kernel, absl::string_view fs,
                                  absl::string_view section) {
  if (absl::Status s = CheckPart("kernel", kernel); !s.ok()) return s;
  if (absl::Status s = CheckPart("file system", fs); !s.ok()) return s;
  return CheckPart("section", section);
}

absl::StatusOr<ExpungeLocation> ParseExpungePath(absl::string_view relative_path) {
  std::vector<std::string> parts = absl::StrSplit(relative_path, '/', absl::SkipEmpty());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        relative_path, ": ", why, ": expunge lists are laid out as KERNEL/FS/unassigned/SECTION",
        kSuffix, ", e.g. 6.1.0/xfs/unassigned/xfs_crc", kSuffix));
  };
  if (parts.size() != 4) return bad(absl::StrCat(parts.size(), " path components, not 4"));
  if (parts[2] != kUnassigned) return bad(absl::StrCat("the third component is not ", kUnassigned));
  absl::string_view file = parts[3];
  if (!absl::ConsumeSuffix(&file, kSuffix)) return bad(absl::StrCat("no ", kSuffix, " suffix"));
  ExpungeLocation location{parts[0], parts[1], std::string(file)};
  if (absl::Status s = CheckExpungeLocation(location.kernel, location.fs, location.section);
      !s.ok()) {
    return bad(s.message());
  }
  return location;
}

}  // namespace kfleet

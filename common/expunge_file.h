// kdevops fstests expunge lists (workflows/fstests/expunges/KERNEL/FS/unassigned/SECTION.txt):
// one test per line, optionally followed by "# comment", with "#" comment lines and blank lines.
// For example:
//
//   generic/388 # bsz#3 crash
//   xfs/168 # Hung:1/6 https://...
//
// The controller stores them per (kernel, file system, section) and kctl imports and exports them.
#ifndef KFLEET_COMMON_EXPUNGE_FILE_H_
#define KFLEET_COMMON_EXPUNGE_FILE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet {

inline constexpr size_t kMaxExpungeFileBytes = 1 << 20;
inline constexpr size_t kMaxExpungeLineBytes = 4 << 10;
// Of each of KERNEL, FS and SECTION in a path.
inline constexpr size_t kMaxExpungePathPartBytes = 255;

// The entries of expunge file `content`, in file order; a test listed twice keeps its first line.
// A comment is what follows the first '#' of the line, trimmed, carriage returns made spaces.
// `file_name` is only used in errors. A file over kMaxExpungeFileBytes is ResourceExhausted.
// Otherwise every bad line is reported at once, one per line of the InvalidArgument message, as
// "FILE:LINE: problem: fix" (lines over kMaxExpungeLineBytes; tests not shaped SUITE/NAME, each
// part of letters, digits, '_', '-' and '.'; NUL bytes).
absl::StatusOr<std::vector<v1::ExpungeEntry>> ParseExpungeFile(absl::string_view content,
                                                               absl::string_view file_name);

// kdevops-style lines, one per entry: "TEST # COMMENT\n", or "TEST\n" without a comment. Newlines
// in a comment become spaces. ParseExpungeFile of the result gives `entries` back (less
// duplicates, and with comments trimmed).
std::string FormatExpungeFile(const std::vector<v1::ExpungeEntry>& entries);

// Where the list of (kernel, fs, section) lives below an expunges directory:
// "KERNEL/FS/unassigned/SECTION.txt". Precondition: CheckExpungeLocation accepts the parts.
std::string ExpungePath(absl::string_view kernel, absl::string_view fs, absl::string_view section);

// OK when each part can be a single path component: not empty, not "." or "..", no '/', NUL or
// whitespace, at most kMaxExpungePathPartBytes. Otherwise InvalidArgument naming the part.
absl::Status CheckExpungeLocation(absl::string_view kernel, absl::string_view fs,
                                  absl::string_view section);

struct ExpungeLocation {
  std::string kernel;
  std::string fs;
  std::string section;
};

// The inverse of ExpungePath: "6.1.0/xfs/unassigned/xfs_crc.txt" -> {6.1.0, xfs, xfs_crc}.
// InvalidArgument, saying the expected layout, for any other shape.
absl::StatusOr<ExpungeLocation> ParseExpungePath(absl::string_view relative_path);

}  // namespace kfleet

#endif  // KFLEET_COMMON_EXPUNGE_FILE_H_

#include "agent/kmsg/kmsg_cursor.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

constexpr size_t kMaxCursorBytes = 4096;

bool ValidBootId(absl::string_view boot_id) {
  if (boot_id.empty() || boot_id.size() > 256) return false;
  for (char c : boot_id) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '=' ||
        !absl::ascii_isprint(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status SaveCursor(const std::string& path, absl::string_view boot_id, uint64_t seq) {
  if (!ValidBootId(boot_id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kmsg cursor: boot id \"", absl::CHexEscape(boot_id),
        "\" is not a printable word (expected the content of /proc/sys/kernel/random/boot_id)"));
  }
  return WriteFileAtomic(path, absl::StrCat("boot_id=", boot_id, "\nseq=", seq, "\n"));
}

absl::StatusOr<KmsgCursor> LoadCursor(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxCursorBytes));
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  KmsgCursor cursor;
  bool ok = lines.size() == 3 && lines[2].empty();
  absl::string_view boot_id = ok ? lines[0] : absl::string_view();
  absl::string_view seq = ok ? lines[1] : absl::string_view();
  ok = ok && absl::ConsumePrefix(&boot_id, "boot_id=") && absl::ConsumePrefix(&seq, "seq=") &&
       ValidBootId(boot_id) && !seq.empty() &&
       absl::ascii_isdigit(static_cast<unsigned char>(seq[0])) &&
       absl::SimpleAtoi(seq, &cursor.seq);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a kmsg cursor (expected \"boot_id=ID\\nseq=N\\n\"); delete it to ",
        "read the kernel log from the start of its buffer"));
  }
  cursor.boot_id = std::string(boot_id);
  return cursor;
}

std::optional<uint64_t> ResumeAfter(const KmsgCursor& cursor, absl::string_view boot_id) {
  if (cursor.boot_id.empty() || cursor.boot_id != boot_id) return std::nullopt;
  return cursor.seq;
}

}  // namespace kfleet::agent

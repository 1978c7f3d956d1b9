#include "cli/memory_size.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kfleet::cli {
namespace {

constexpr size_t kMaxQuoted = 32;  // of the text quoted back in an error

int ShiftOf(char suffix) {
  switch (absl::ascii_toupper(static_cast<unsigned char>(suffix))) {
    case 'K':
      return 10;
    case 'M':
      return 20;
    case 'G':
      return 30;
    case 'T':
      return 40;
    default:
      return -1;
  }
}

}  // namespace

absl::StatusOr<uint64_t> ParseMemorySize(absl::string_view text) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid size \"", text.substr(0, kMaxQuoted), "\"", why,
                     ": write a number of bytes with an optional K, M, G or T suffix, e.g. 64M or "
                     "1G"));
  };
  absl::string_view digits = text;
  int shift = 0;
  if (!digits.empty() && !absl::ascii_isdigit(static_cast<unsigned char>(digits.back()))) {
    shift = ShiftOf(digits.back());
    if (shift < 0) return invalid("");
    digits.remove_suffix(1);
  }
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      })) {
    return invalid("");
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(digits, &n) || n > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return invalid(" (too large)");
  }
  if (n == 0) return invalid(" (the limit must be above 0)");
  return n << shift;
}

std::string CanonicalMemorySize(absl::string_view text) { return absl::AsciiStrToUpper(text); }

}  // namespace kfleet::cli

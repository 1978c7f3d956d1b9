#include "common/ids.h"

#include <sys/random.h>

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace kfleet {

std::string NewId(absl::string_view prefix) {
  uint64_t v = 0;
  while (getrandom(&v, sizeof v, 0) != sizeof v) {
  }
  return absl::StrCat(prefix, absl::Hex(v, absl::kZeroPad16));
}

bool IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > 64 || id == "." || id == "..") return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace kfleet

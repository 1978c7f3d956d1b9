#include "agent/collect/procfs_text.h"

#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace kfleet::agent::procfs_internal {
namespace {

constexpr size_t kExcerptBytes = 64;

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Length of the UTF-8 sequence starting at s[i], 0 if it is not valid (overlong forms, surrogates
// and code points past U+10FFFF included).
size_t Utf8Length(absl::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

void ForEachLine(absl::string_view content, absl::FunctionRef<bool(const Line&)> fn) {
  size_t number = 0;
  while (!content.empty()) {
    size_t end = content.find('\n');
    absl::string_view text = content.substr(0, end);
    content.remove_prefix(end == absl::string_view::npos ? content.size() : end + 1);
    Line line;
    line.number = ++number;
    line.too_long = text.size() > kMaxLineBytes;
    line.text = text.substr(0, kMaxLineBytes);
    if (!fn(line)) return;
  }
}

std::vector<absl::string_view> Fields(absl::string_view line, size_t max_fields) {
  std::vector<absl::string_view> fields;
  size_t i = 0;
  while (fields.size() < max_fields) {
    while (i < line.size() && IsBlank(line[i])) ++i;
    if (i == line.size()) break;
    size_t start = i;
    while (i < line.size() && !IsBlank(line[i])) ++i;
    fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

bool ParseU64(absl::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(s, out);
}

bool ParseFinite(absl::string_view s, double* out) {
  if (s.empty() || s.size() > 64) return false;
  // SimpleAtod skips surrounding whitespace and accepts "nan"/"inf"; /proc never writes either.
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E';
    if (!ok) return false;
  }
  return absl::SimpleAtod(s, out) && std::isfinite(*out);
}

bool IsLabelValue(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '\0') return false;
    size_t n = Utf8Length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

kfleet::v1::MetricSample& AddSample(MetricSamples* out, absl::string_view name, double value) {
  kfleet::v1::MetricSample& s = out->emplace_back();
  s.set_name(std::string(name));
  s.set_value(value);
  return s;
}

void BadLines::Note(const Line& line) {
  if (number_ != 0) return;
  number_ = line.number;
  excerpt_ = absl::CHexEscape(line.text.substr(0, kExcerptBytes));
  if (line.text.size() > kExcerptBytes || line.too_long) absl::StrAppend(&excerpt_, "...");
}

absl::Status BadLines::Error(absl::string_view file, absl::string_view expected) const {
  if (number_ == 0) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": empty; expected ", expected));
  }
  return absl::InvalidArgumentError(absl::StrCat(file, ": no usable line (line ", number_, ": \"",
                                                 excerpt_, "\"); expected ", expected));
}

}  // namespace kfleet::agent::procfs_internal

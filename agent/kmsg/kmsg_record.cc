#include "agent/kmsg/kmsg_record.h"

#include <algorithm>
#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace kfleet::agent {
namespace {

// Enough of the input to recognise it in an error message, escaped so that it prints on one line.
std::string Snippet(absl::string_view data) {
  constexpr size_t kMax = 48;
  std::string out = absl::CHexEscape(data.substr(0, kMax));
  if (data.size() > kMax) out += "...";
  return absl::StrCat("\"", out, "\"");
}

// A decimal number of digits only: no sign, no spaces (which absl::SimpleAtoi would accept).
template <typename T>
bool ParseDecimal(absl::string_view text, T* value) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, value);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "123.456789" (any number of fraction digits; only microseconds are kept).
bool ParseSecondsMicros(absl::string_view text, uint64_t* us) {
  text = absl::StripAsciiWhitespace(text);
  size_t dot = text.find('.');
  absl::string_view whole = text.substr(0, dot);
  absl::string_view frac = dot == absl::string_view::npos ? "" : text.substr(dot + 1);
  uint64_t seconds = 0;
  if (!ParseDecimal(whole, &seconds)) return false;
  if (seconds > UINT64_MAX / 1000000 - 1) return false;
  uint64_t micros = 0;
  for (size_t i = 0; i < frac.size(); ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(frac[i]))) return false;
    if (i < 6) micros = micros * 10 + static_cast<uint64_t>(frac[i] - '0');
  }
  for (size_t i = frac.size(); i < 6; ++i) micros *= 10;
  *us = seconds * 1000000 + micros;
  return true;
}

bool IsDmesgLine(absl::string_view line) {
  return absl::StartsWith(line, "[") || absl::StartsWith(line, "<");
}

}  // namespace

std::string UnescapeKmsg(absl::string_view escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped[i] == '\\' && i + 3 < escaped.size() && escaped[i + 1] == 'x') {
      int hi = HexValue(escaped[i + 2]);
      int lo = HexValue(escaped[i + 3]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 3;
        continue;
      }
    }
    out.push_back(escaped[i]);
  }
  return out;
}

absl::StatusOr<KmsgRecord> ParseKmsgRecord(absl::string_view data) {
  if (data.size() > kMaxKmsgRecordBytes) {
    return absl::InvalidArgumentError(absl::StrCat("kmsg record of ", data.size(),
                                                   " bytes is larger than the kernel's limit of ",
                                                   kMaxKmsgRecordBytes, ": ", Snippet(data)));
  }
  absl::ConsumeSuffix(&data, "\n");
  size_t semi = data.find(';');
  size_t first_newline = data.find('\n');
  if (semi == absl::string_view::npos || semi > first_newline) {
    return absl::InvalidArgumentError(
        absl::StrCat("kmsg record has no ';' after its header: ", Snippet(data)));
  }
  absl::string_view header = data.substr(0, semi);
  std::vector<absl::string_view> fields = absl::StrSplit(header, ',');
  if (fields.size() < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("kmsg record header has ", fields.size(),
                     " fields (expected PRIO,SEQ,TIMESTAMP,FLAGS[,...]): ", Snippet(data)));
  }
  KmsgRecord record;
  uint32_t prefix = 0;
  if (!ParseDecimal(fields[0], &prefix) || prefix > 1023) {
    return absl::InvalidArgumentError(
        absl::StrCat("kmsg record priority is not a number 0..1023: ", Snippet(data)));
  }
  record.priority = static_cast<int>(prefix & 7);
  record.facility = static_cast<int>(prefix >> 3);
  if (!ParseDecimal(fields[1], &record.seq)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kmsg record sequence number is not a number: ", Snippet(data)));
  }
  if (!ParseDecimal(fields[2], &record.timestamp_us)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kmsg record timestamp is not a number: ", Snippet(data)));
  }
  if (fields[3].size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("kmsg record flags are not one character: ", Snippet(data)));
  }
  record.flags = fields[3][0];
  for (size_t i = 4; i < fields.size(); ++i) {
    absl::string_view value = fields[i];
    if (absl::ConsumePrefix(&value, "caller=")) record.caller = std::string(value);
  }

  absl::string_view rest = data.substr(semi + 1);
  size_t end = rest.find('\n');
  record.message = UnescapeKmsg(rest.substr(0, end));
  if (end == absl::string_view::npos) return record;
  int line_number = 1;
  for (absl::string_view line : absl::StrSplit(rest.substr(end + 1), '\n')) {
    ++line_number;
    if (!absl::ConsumePrefix(&line, " ")) {
      return absl::InvalidArgumentError(
          absl::StrCat("kmsg record line ", line_number,
                       " does not start with a space (dictionary lines must): ", Snippet(line)));
    }
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("kmsg record line ", line_number, " is not KEY=VALUE: ", Snippet(line)));
    }
    record.dict.emplace_back(UnescapeKmsg(line.substr(0, eq)), UnescapeKmsg(line.substr(eq + 1)));
  }
  return record;
}

absl::StatusOr<KmsgRecord> ParseDmesgLine(absl::string_view line) {
  absl::string_view original = line;
  if (line.size() > kMaxKmsgRecordBytes) {
    return absl::InvalidArgumentError(absl::StrCat("dmesg line of ", line.size(),
                                                   " bytes is longer than the kernel's limit of ",
                                                   kMaxKmsgRecordBytes, ": ", Snippet(line)));
  }
  absl::ConsumeSuffix(&line, "\n");
  absl::ConsumeSuffix(&line, "\r");
  KmsgRecord record;
  if (absl::ConsumePrefix(&line, "<")) {
    size_t close = line.find('>');
    uint32_t prefix = 0;
    if (close == absl::string_view::npos || !ParseDecimal(line.substr(0, close), &prefix) ||
        prefix > 1023) {
      return absl::InvalidArgumentError(
          absl::StrCat("dmesg line has a bad \"<N>\" level: ", Snippet(original)));
    }
    record.priority = static_cast<int>(prefix & 7);
    record.facility = static_cast<int>(prefix >> 3);
    line.remove_prefix(close + 1);
  }
  size_t close = line.find(']');
  if (!absl::ConsumePrefix(&line, "[") || close == absl::string_view::npos ||
      !ParseSecondsMicros(line.substr(0, close - 1), &record.timestamp_us)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dmesg line does not start with \"[SECONDS.MICROS]\": ", Snippet(original)));
  }
  line.remove_prefix(close);
  // A caller id right after the timestamp: "[    T123]" or "[     C1]".
  if (absl::StartsWith(line, "[")) {
    size_t caller_end = line.find(']');
    absl::string_view id = caller_end == absl::string_view::npos
                               ? absl::string_view()
                               : absl::StripAsciiWhitespace(line.substr(1, caller_end - 1));
    if (id.size() >= 2 && (id[0] == 'T' || id[0] == 'C')) {
      record.caller = std::string(id);
      line.remove_prefix(caller_end + 1);
    }
  }
  absl::ConsumePrefix(&line, " ");
  record.message = std::string(line);
  return record;
}

absl::StatusOr<std::vector<KmsgRecord>> ParseKmsgText(absl::string_view text) {
  std::vector<KmsgRecord> records;
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    const size_t line_number = i + 1;
    if (line.empty()) continue;
    if (line[0] == ' ') {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": a dictionary line outside a kmsg record"));
    }
    // A record runs on over the lines that follow it and start with a space: a raw record's
    // dictionary, or the rest of a dmesg message that held newlines, which dmesg indents to
    // where the message began.
    size_t last = i;
    while (last + 1 < lines.size() && absl::StartsWith(lines[last + 1], " ")) ++last;
    absl::StatusOr<KmsgRecord> record;
    if (IsDmesgLine(line)) {
      record = ParseDmesgLine(line);
      if (record.ok()) {
        record->seq = line_number;
        const size_t indent = line.size() - std::min(line.size(), record->message.size());
        for (size_t j = i + 1; j <= last; ++j) {
          absl::string_view more = lines[j];
          more.remove_prefix(std::min({indent, more.find_first_not_of(' '), more.size()}));
          absl::StrAppend(&record->message, "\n", more);
        }
        if (record->message.size() > kMaxKmsgRecordBytes) {
          record = absl::InvalidArgumentError(
              absl::StrCat("dmesg message of ", record->message.size(),
                           " bytes is longer than the kernel's limit of ", kMaxKmsgRecordBytes));
        }
      }
    } else {
      const char* begin = line.data();
      const char* end = lines[last].data() + lines[last].size();
      record = ParseKmsgRecord(absl::string_view(begin, static_cast<size_t>(end - begin)));
    }
    i = last;
    if (!record.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": ", record.status().message()));
    }
    records.push_back(*std::move(record));
  }
  return records;
}

}  // namespace kfleet::agent

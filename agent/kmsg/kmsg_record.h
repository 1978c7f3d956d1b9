// One record of the kernel log, as /dev/kmsg hands it out (the kernel's
// Documentation/ABI/testing/dev-kmsg):
//
//   PRIO_FACILITY,SEQ,TIMESTAMP_US,FLAGS[,MORE...];MESSAGE\n
//    KEY=VALUE\n            (dictionary lines, each starting with a space: SUBSYSTEM=, DEVICE=)
//
// where the kernel writes bytes below 0x20, 0x7f and above, and the backslash as "\xNN". Also the
// text form of `dmesg` ("[  123.456789] message", "<4>[  123.456789] message" from `dmesg -r`),
// so that fixtures can be copied from a machine's log.
#ifndef KFLEET_AGENT_KMSG_KMSG_RECORD_H_
#define KFLEET_AGENT_KMSG_KMSG_RECORD_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet::agent {

// The largest record the kernel hands out in one read of /dev/kmsg (CONSOLE_EXT_LOG_MAX): header,
// message and dictionary, escaped. A reader's buffer must hold at least this much.
inline constexpr size_t kMaxKmsgRecordBytes = 8192;

struct KmsgRecord {
  int priority = -1;          // 0 (emerg) .. 7 (debug); -1 when the text did not say
  int facility = 0;           // 0 = kernel; other values are lines userspace wrote to /dev/kmsg
  uint64_t seq = 0;           // increases by one per record within a boot
  uint64_t timestamp_us = 0;  // since boot, CLOCK_MONOTONIC-like (the kernel's local_clock)
  char flags = '-';           // '-', or 'c' for a fragment of a line continued in the next record
  std::string caller;         // "T123" / "C1" with CONFIG_PRINTK_CALLER, else ""
  std::string message;        // unescaped, without the trailing newline
  std::vector<std::pair<std::string, std::string>> dict;  // unescaped, in order
};

// Parses one record as read(2) returns it from /dev/kmsg (a trailing "\n" is optional). Header
// fields after FLAGS are ignored except "caller=". InvalidArgument, naming what is wrong, for
// a record larger than kMaxKmsgRecordBytes, a missing ";", a bad number or flag, or a line
// after the message that does not start with a space.
absl::StatusOr<KmsgRecord> ParseKmsgRecord(absl::string_view data);

// Parses one line of `dmesg` output: "[ SECONDS.MICROS] message", optionally preceded by the raw
// "<N>" of `dmesg -r` (facility * 8 + priority) and followed by a caller id "[    T123]". seq is
// left 0, priority -1 without "<N>". InvalidArgument for anything else, and for a line longer
// than kMaxKmsgRecordBytes.
absl::StatusOr<KmsgRecord> ParseDmesgLine(absl::string_view line);

// Splits a log excerpt into records: raw /dev/kmsg records (a line with its dictionary lines that
// follow, each starting with a space) and dmesg lines may be mixed. The indented lines after a
// dmesg line are the rest of its message (dmesg prints a message's newlines that way). A dmesg
// line's seq is its 1-based line number. Empty lines are skipped. InvalidArgument names the first
// bad line by number.
absl::StatusOr<std::vector<KmsgRecord>> ParseKmsgText(absl::string_view text);

// Undoes the kernel's "\xNN" escaping. A backslash not followed by "x" and two hex digits is kept.
std::string UnescapeKmsg(absl::string_view escaped);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KMSG_KMSG_RECORD_H_

// Turns the kernel log into events (DESIGN.md, "Metrics and events"): one KernelEvent per OOM kill,
// oops, BUG, panic, WARNING, hung task, soft lockup and KASAN report, in the forms kernels 4.19
// through 6.x print them, plus the kills of the userspace OOM killers earlyoom and systemd-oomd
// from their journal lines.
#ifndef KFLEET_AGENT_KMSG_KERNEL_EVENTS_H_
#define KFLEET_AGENT_KMSG_KERNEL_EVENTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/kmsg/kmsg_record.h"
#include "agent/kmsg/oom_lines.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

// Caps on an event's detail, which holds the lines of a report after its headline.
inline constexpr int kMaxDetailLines = 64;
inline constexpr size_t kMaxDetailBytes = 8192;
// A report ends when its next line comes this much later (kmsg timestamps).
inline constexpr uint64_t kReportGapUs = 5'000'000;

// Fed the records of one boot in order; returns the events they complete. Not thread-safe: one
// caller at a time.
//
// An event's kmsg_seq and time come from its headline record: time_unix_ms is boot_time_unix_ms
// plus the record's timestamp. command_id is left empty for the caller, who maps the victim
// (oom.pid, oom.task_memcg) or the time to a running command.
//
// OOM kills: each "Killed process" line is one event, emitted when that line is fed, described
// by it and, when they came just before it for the same pid (they are rate-limited and may be
// missing), by the "oom-kill:" summary (constraint, oom_memcg, task_memcg, uid) and 4.19's
// "Kill process ... or sacrifice child" line; the "invoked oom-killer" header and summary lines
// go into detail. oom.memcg is set for CONSTRAINT_MEMCG or a "Memory cgroup out of memory" prefix.
//
// Reports: the headline's event is emitted when the report ends, which is at its end line ("---[
// end trace ... ]---"; included in detail), at the headline of another report or an OOM line, at a
// record more than kReportGapUs after the previous one, or at a record of lower severity than
// warning that neither is indented nor looks like part of a report ("task:", "Call Trace:",
// register dumps...). detail keeps at most kMaxDetailLines lines and kMaxDetailBytes bytes and
// ends with "[truncated]" when it had to drop lines. A WARN's own message, which kernels since
// 4.19 print between "[ cut here ]" and the WARNING line, comes first in its detail.
//
// Records written by userspace (facility != 0) never start or extend a kernel report; they are
// only checked for the userspace killers' lines.
class KernelEventParser {
 public:
  KernelEventParser(std::string boot_id, int64_t boot_time_unix_ms);

  // The events that `record` completes: none, one, or two (a report it ends plus an OOM kill).
  std::vector<kfleet::v1::KernelEvent> Feed(const KmsgRecord& record);

  // A journal or syslog line from a userspace OOM killer (see ParseEarlyoomLine and
  // ParseSystemdOomdLine), logged at `time_unix_ms`: its kill event (kind "oom", kmsg_seq 0), or
  // nothing for any other line. Does not touch the state of kernel reports.
  std::vector<kfleet::v1::KernelEvent> FeedLine(absl::string_view line, int64_t time_unix_ms);

  // Ends the open report, if any, and returns its event. Call when the log is idle (a reader's
  // wait timed out) so that a report whose end was not printed still comes out, and at the end.
  std::vector<kfleet::v1::KernelEvent> Flush();

  // True while a report's headline has been fed and its event not yet returned.
  bool report_open() const { return report_.has_value(); }

 private:
  // Without default member initializers, which would keep std::optional from seeing it as
  // default-constructible inside this class (clang); emplace() value-initializes it to zeros.
  struct OpenReport {
    kfleet::v1::KernelEvent event;
    std::vector<std::string> lines;
    size_t bytes;
    bool truncated;
    int priority;
    uint64_t last_timestamp_us;
  };

  // Handles the OOM lines; true if `record` was one.
  bool FeedOom(const KmsgRecord& record, std::vector<kfleet::v1::KernelEvent>* out);
  // True if `record` continues the open report (and was added to it).
  bool ContinueReport(const KmsgRecord& record);
  void OpenReportAt(const KmsgRecord& record, absl::string_view kind);
  void AddLine(absl::string_view line);
  void CloseReport(std::vector<kfleet::v1::KernelEvent>* out);
  kfleet::v1::KernelEvent NewEvent(absl::string_view kind, const KmsgRecord& record) const;

  const std::string boot_id_;
  const int64_t boot_time_unix_ms_;

  std::optional<OpenReport> report_;
  // Lines seen since "[ cut here ]": the WARN message that may precede a WARNING line.
  bool after_cut_here_ = false;
  std::string preamble_;

  // The current OOM's header and summary lines, until its kill is seen or the next OOM starts.
  std::string oom_header_;
  std::optional<OomSummary> summary_;
  std::string summary_line_;
  // 4.19's choice line; only the record right after it may use it.
  std::optional<OomChoice> choice_;
  std::string choice_line_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KMSG_KERNEL_EVENTS_H_

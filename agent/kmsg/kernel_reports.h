// How the kernel starts and ends its multi-line reports (oops, BUG, panic, WARNING, hung task,
// soft lockup, KASAN), in the forms kernels 4.19 through 6.x print. Pure functions on one line's
// text; KernelEventParser strings them together.
#ifndef KFLEET_AGENT_KMSG_KERNEL_REPORTS_H_
#define KFLEET_AGENT_KMSG_KERNEL_REPORTS_H_

#include "absl/strings/string_view.h"

namespace kfleet::agent {

// The kind of report `message` is the headline of, or "" for any other line:
//   "kasan"        BUG: KASAN: use-after-free in foo+0x12/0x40
//   "soft_lockup"  watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [comm:123]
//                  (also "NMI watchdog: " and no prefix)
//   "panic"        Kernel panic - not syncing: ...
//   "warn"         WARNING: CPU: 1 PID: 123 at lib/foo.c:45 func+0x1/0x2, and lockdep's
//                  "WARNING: possible circular locking dependency detected"
//   "hung_task"    INFO: task comm:123 blocked for more than 120 seconds.
//   "oops"         Oops: 0000 [#1] SMP; BUG: unable to handle kernel NULL pointer dereference at
//                  ...; BUG: kernel NULL pointer dereference, address: ...; BUG: unable to handle
//                  page fault for address: ...; general protection fault ...; invalid opcode:
//                  ...; arm64's "Unable to handle kernel ..." and "Internal error: Oops ..."
//   "bug"          kernel BUG at mm/foo.c:123!, and every other "BUG: " line
absl::string_view ReportKind(absl::string_view message);

// True if `message` is the last line of a report of `kind`: "---[ end trace ... ]---" for oops,
// bug and warn, "---[ end Kernel panic - not syncing: ... ]---" for panic, and the line of "="
// that closes a KASAN report. Hung task and soft lockup reports have no end line.
bool EndsReport(absl::string_view kind, absl::string_view message);

// True for the line an oops or BUG prints after its own headline ("Oops: 0002 [#1] SMP PTI",
// "invalid opcode: 0000 [#1] SMP", "general protection fault: 0000 [#1]", "Internal error: ..."):
// part of the open report, not a new one.
bool IsDieLine(absl::string_view message);

// True for lines a report prints at other log levels than its headline: indented lines (call
// traces), "task:", "Call Trace:", "CPU:", "Hardware name:", "RIP:", "Code:", register dumps...
bool LooksLikeReportLine(absl::string_view message);

// True for "------------[ cut here ]------------", printed before a WARNING or kernel BUG (and
// before the WARN's own message, in kernels since 4.19).
bool IsCutHere(absl::string_view message);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KMSG_KERNEL_REPORTS_H_

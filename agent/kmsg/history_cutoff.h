// Which records of the kernel log an agent finds already there when it first starts: history,
// kept on the host's timeline but not news (no alert, no counter, never a command's).
#ifndef KFLEET_AGENT_KMSG_HISTORY_CUTOFF_H_
#define KFLEET_AGENT_KMSG_HISTORY_CUTOFF_H_

#include <cstdint>
#include <optional>

#include "absl/time/time.h"
#include "agent/kmsg/kmsg_record.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

// An agent that starts this soon after boot is the boot's own (a guest whose state dir is a
// tmpfs, so that every boot is a first start; a machine that starts its agent at boot): what the
// kernel said since boot, a kernel under test's WARNINGs at boot included, is news to it.
inline constexpr absl::Duration kBootWindow = absl::Minutes(5);

// CLOCK_MONOTONIC now, in microseconds: the clock the kernel log's timestamps count on (printk's
// local_clock, which like it starts at boot and stops during suspend).
uint64_t MonotonicNowUs();

// Judges the records of one reading of the log, in seq order. Not thread-safe.
//
// A record is history when all of these hold:
//  - the agent starts for the first time in its state dir (it has no kmsg cursor). After a
//    restart the cursor says what was reported before, and a new boot's log is news from its
//    start;
//  - the agent did not start within kBootWindow of boot (see there);
//  - the reader had not reached the end of the log when it read the record
//    (KmsgReader::caught_up()): the record was in the kernel's buffer when the agent opened it;
//  - the record's timestamp is before the agent's start.
// Once a record is news, every later one is: history is a prefix of the log.
//
// Why both the position and the timestamp: by its timestamp alone, a record near the start could
// be judged either way, as printk's clock and CLOCK_MONOTONIC drift apart (NTP slews
// CLOCK_MONOTONIC by up to 500 ppm: seconds over days of uptime); by its position alone, a record
// written while the agent reads a full buffer would be history. With both, a record written after
// the reader caught up, or stamped after the start, is news: a doubtful record is reported as
// news, never hidden.
class HistoryCutoff {
 public:
  // `first_start`: the agent had no kmsg cursor. `start_us`: MonotonicNowUs() at the agent's
  // start.
  HistoryCutoff(bool first_start, uint64_t start_us);

  // Judges `record`, the next one read; `caught_up`: KmsgReader::caught_up() once it was read.
  // True if it is history.
  bool Judge(const KmsgRecord& record, bool caught_up);

  // True if `event`, made by KernelEventParser from the records judged so far, is history: its
  // headline record (kmsg_seq) was. False for events of no record (kmsg_seq 0).
  bool IsHistory(const kfleet::v1::KernelEvent& event) const;

  // True while records may still be judged history.
  bool open() const { return open_; }

 private:
  bool open_;
  const uint64_t start_us_;
  std::optional<uint64_t> last_history_seq_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KMSG_HISTORY_CUTOFF_H_

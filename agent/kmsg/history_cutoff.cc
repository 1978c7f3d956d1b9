#include "agent/kmsg/history_cutoff.h"

#include <time.h>

namespace kfleet::agent {

uint64_t MonotonicNowUs() {
  struct timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000 + static_cast<uint64_t>(now.tv_nsec) / 1000;
}

HistoryCutoff::HistoryCutoff(bool first_start, uint64_t start_us)
    : open_(first_start &&
            start_us > static_cast<uint64_t>(absl::ToInt64Microseconds(kBootWindow))),
      start_us_(start_us) {}

bool HistoryCutoff::Judge(const KmsgRecord& record, bool caught_up) {
  if (!open_) return false;
  if (caught_up || record.timestamp_us >= start_us_) {
    open_ = false;
    return false;
  }
  last_history_seq_ = record.seq;
  return true;
}

bool HistoryCutoff::IsHistory(const kfleet::v1::KernelEvent& event) const {
  return event.kmsg_seq() != 0 && last_history_seq_.has_value() &&
         event.kmsg_seq() <= *last_history_seq_;
}

}  // namespace kfleet::agent

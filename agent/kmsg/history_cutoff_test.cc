#include "agent/kmsg/history_cutoff.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace kfleet::agent {
namespace {

constexpr uint64_t kSecond = 1'000'000;
// An agent started an hour after boot.
constexpr uint64_t kStart = 3600 * kSecond;

KmsgRecord At(uint64_t seq, uint64_t timestamp_us) {
  KmsgRecord r;
  r.seq = seq;
  r.timestamp_us = timestamp_us;
  r.message = absl::StrCat("record ", seq);
  return r;
}

kfleet::v1::KernelEvent EventOf(uint64_t seq) {
  kfleet::v1::KernelEvent e;
  e.set_kind("oom");
  e.set_kmsg_seq(seq);
  return e;
}

// Validates that on a first start the records the buffer held from before the start are history,
// and that the first record stamped after the start ends history for good, also for an earlier
// stamp after it (printk's per-CPU clocks are not strictly ordered).
TEST(HistoryCutoffTest, RecordsBeforeAFirstStartAreHistory) {
  HistoryCutoff cutoff(/*first_start=*/true, kStart);
  EXPECT_TRUE(cutoff.open());
  EXPECT_TRUE(cutoff.Judge(At(10, 5 * kSecond), false));
  EXPECT_TRUE(cutoff.Judge(At(11, kStart - 29 * 60 * kSecond), false));
  EXPECT_FALSE(cutoff.Judge(At(12, kStart + 1), false));
  EXPECT_FALSE(cutoff.open());
  EXPECT_FALSE(cutoff.Judge(At(13, 6 * kSecond), false));

  EXPECT_TRUE(cutoff.IsHistory(EventOf(10)));
  EXPECT_TRUE(cutoff.IsHistory(EventOf(11)));
  EXPECT_FALSE(cutoff.IsHistory(EventOf(12)));
  EXPECT_FALSE(cutoff.IsHistory(EventOf(13)));
  EXPECT_FALSE(cutoff.IsHistory(EventOf(0)));  // a userspace killer's line: not a record
}

// Validates that a record read after the reader reached the end of the log is news whatever its
// timestamp says: it was written after the agent had read what the buffer held.
TEST(HistoryCutoffTest, RecordsAfterCatchingUpAreNews) {
  HistoryCutoff cutoff(true, kStart);
  EXPECT_TRUE(cutoff.Judge(At(1, kSecond), false));
  EXPECT_FALSE(cutoff.Judge(At(2, kStart - kSecond), /*caught_up=*/true));
  EXPECT_FALSE(cutoff.Judge(At(3, kSecond), false));
  EXPECT_TRUE(cutoff.IsHistory(EventOf(1)));
  EXPECT_FALSE(cutoff.IsHistory(EventOf(2)));
}

// Validates that an agent with a cursor (a restart, or a new boot) has no history: what its
// cursor does not cover was never reported, and is news.
TEST(HistoryCutoffTest, NoHistoryAfterTheFirstStart) {
  HistoryCutoff cutoff(/*first_start=*/false, kStart);
  EXPECT_FALSE(cutoff.open());
  EXPECT_FALSE(cutoff.Judge(At(1, kSecond), false));
  EXPECT_FALSE(cutoff.IsHistory(EventOf(1)));
}

// Validates that an agent started within kBootWindow of boot (a guest whose state dir is a tmpfs
// starts for the first time at every boot) reports the records since boot as news.
TEST(HistoryCutoffTest, NoHistoryForAnAgentStartedWithItsBoot) {
  const uint64_t early = static_cast<uint64_t>(absl::ToInt64Microseconds(kBootWindow)) - kSecond;
  HistoryCutoff cutoff(true, early);
  EXPECT_FALSE(cutoff.open());
  EXPECT_FALSE(cutoff.Judge(At(1, kSecond), false));
  EXPECT_FALSE(cutoff.IsHistory(EventOf(1)));
}

// Validates that MonotonicNowUs counts from boot, as /proc/uptime does (which also counts time in
// suspend, so it is at least as large), and never backwards.
TEST(HistoryCutoffTest, MonotonicNowCountsFromBoot) {
  const uint64_t a = MonotonicNowUs();
  double uptime_s = 0;
  std::ifstream("/proc/uptime") >> uptime_s;
  const uint64_t b = MonotonicNowUs();
  ASSERT_GT(uptime_s, 0);
  EXPECT_LE(a, b);
  EXPECT_LE(static_cast<double>(a) / 1e6, uptime_s + 0.1);
  EXPECT_GT(static_cast<double>(a) / 1e6, 0.0);
}

}  // namespace
}  // namespace kfleet::agent

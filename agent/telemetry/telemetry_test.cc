// The agent's telemetry loops: the kernel log watcher (events reported once, across restarts) and
// the metrics reporter (batches at the interval set).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/telemetry/kernel_watcher.h"
#include "agent/telemetry/metrics_reporter.h"
#include "common/files.h"

namespace kfleet::agent {
namespace {

using ::testing::SizeIs;

class KernelWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-watcher-XXXXXX";
    dir_ = mkdtemp(tmpl);
    log_ = dir_ + "/kmsg";
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void Append(const std::string& text) { std::ofstream(log_, std::ios::app) << text; }

  // Runs a watcher over the log file until it has read `records` records; returns the events it
  // reported. Its agent started `start_us` after boot: by default with the boot, so that no
  // record is history.
  std::vector<v1::KernelEvent> Watch(int records, uint64_t start_us = 1) {
    absl::Mutex mu;
    std::vector<v1::KernelEvent> events;
    int seen = 0;
    KernelWatcherOptions options;
    options.kmsg_path = log_;
    options.cursor_path = dir_ + "/cursor";
    options.boot_id = "boot-1";
    options.boot_time_unix_ms = 1'000'000;
    options.start_monotonic_us = start_us;
    KernelWatcherHooks hooks;
    hooks.on_record = [&](const KmsgRecord&) {
      absl::MutexLock l(&mu);
      ++seen;
    };
    hooks.attribute = [](const v1::KernelEvent& e) {
      return e.has_oom() ? std::string("c-hog") : std::string();
    };
    hooks.report = [&](v1::KernelEvent e) {
      absl::MutexLock l(&mu);
      events.push_back(std::move(e));
      return absl::OkStatus();
    };
    absl::StatusOr<std::unique_ptr<KernelWatcher>> w = KernelWatcher::Start(options, hooks);
    EXPECT_TRUE(w.ok()) << w.status();
    if (!w.ok()) return {};
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      {
        absl::MutexLock l(&mu);
        if (seen >= records) break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    absl::SleepFor(absl::Milliseconds(1500));  // an idle second: open reports are flushed
    (*w)->Stop();
    absl::MutexLock l(&mu);
    EXPECT_EQ(seen, records);
    return events;
  }

  std::string dir_, log_;
};

constexpr char kOom[] =
    "6,10,5000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
    "mems_allowed=0,oom_memcg=/kfleet/c-hog,task_memcg=/kfleet/c-hog,task=tail,pid=42,uid=0\n"
    "3,11,5000100,-;Memory cgroup out of memory: Killed process 42 (tail) total-vm:68148kB, "
    "anon-rss:65152kB, file-rss:1532kB, shmem-rss:0kB, UID:0 pgtables:164kB oom_score_adj:0\n";
constexpr char kWarn[] =
    "4,12,6000000,-;WARNING: CPU: 0 PID: 7 at lib/foo.c:45 foo+0x1/0x2\n"
    "4,13,6000001,-;Call Trace:\n"
    "4,14,6000002,-;---[ end trace 0000000000000000 ]---\n";

// Validates that records become attributed events once, that a restarted watcher (same boot,
// same cursor) reports nothing again, and goes on with records that came later.
TEST_F(KernelWatcherTest, EventsOnceAcrossRestarts) {
  Append(kOom);
  std::vector<v1::KernelEvent> first = Watch(2);
  ASSERT_THAT(first, SizeIs(1));
  EXPECT_EQ(first[0].kind(), "oom");
  EXPECT_EQ(first[0].command_id(), "c-hog");
  EXPECT_EQ(first[0].oom().pid(), 42);
  EXPECT_EQ(first[0].oom().comm(), "tail");
  EXPECT_TRUE(first[0].oom().memcg());
  EXPECT_EQ(first[0].kmsg_seq(), 11u);
  EXPECT_EQ(first[0].boot_id(), "boot-1");
  EXPECT_EQ(first[0].time_unix_ms(), 1'000'000 + 5000);

  Append(kWarn);
  std::vector<v1::KernelEvent> second = Watch(3);  // the OOM records are skipped
  ASSERT_THAT(second, SizeIs(1));
  EXPECT_EQ(second[0].kind(), "warn");
  EXPECT_EQ(second[0].command_id(), "");

  EXPECT_THAT(Watch(0), SizeIs(0));
}

// Validates that a cursor of another boot is ignored: the log is read from its start.
TEST_F(KernelWatcherTest, AnotherBootStartsAfresh) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/cursor", "boot_id=boot-0\nseq=99\n").ok());
  Append(kOom);
  EXPECT_THAT(Watch(2), SizeIs(1));
}

// Validates that on a first start (no cursor) an hour after boot, the records the log held from
// before the start become events marked before_agent, without a command and outside the kmsg
// streams, and that a record written after the watcher caught up is news (attributed, streamed)
// even with an older timestamp; a restarted watcher has no history.
TEST_F(KernelWatcherTest, RecordsBeforeAFirstStartAreHistory) {
  Append(kOom);  // stamped 5 s after boot
  absl::Mutex mu;
  std::vector<v1::KernelEvent> events;
  int streamed = 0;
  int attributed = 0;
  KernelWatcherOptions options;
  options.kmsg_path = log_;
  options.cursor_path = dir_ + "/cursor";
  options.boot_id = "boot-1";
  options.boot_time_unix_ms = 1'000'000;
  options.start_monotonic_us = 3600'000'000;
  KernelWatcherHooks hooks;
  hooks.on_record = [&](const KmsgRecord&) {
    absl::MutexLock l(&mu);
    ++streamed;
  };
  hooks.attribute = [&](const v1::KernelEvent&) {
    absl::MutexLock l(&mu);
    ++attributed;
    return std::string("c-hog");
  };
  hooks.report = [&](v1::KernelEvent e) {
    absl::MutexLock l(&mu);
    events.push_back(std::move(e));
    return absl::OkStatus();
  };
  absl::StatusOr<std::unique_ptr<KernelWatcher>> w = KernelWatcher::Start(options, hooks);
  ASSERT_TRUE(w.ok()) << w.status();
  auto wait_events = [&](size_t n) {
    absl::MutexLock l(&mu);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return events.size() >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  };
  ASSERT_TRUE(wait_events(1));
  absl::SleepFor(absl::Milliseconds(100));  // past the end of the file: caught up
  Append(kWarn);                            // stamped 6 s after boot, written now
  ASSERT_TRUE(wait_events(2));
  (*w)->Stop();

  absl::MutexLock l(&mu);
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].kind(), "oom");
  EXPECT_TRUE(events[0].before_agent());
  EXPECT_EQ(events[0].command_id(), "");
  EXPECT_EQ(events[0].kmsg_seq(), 11u);
  EXPECT_EQ(events[1].kind(), "warn");
  EXPECT_FALSE(events[1].before_agent());
  EXPECT_EQ(events[1].command_id(), "c-hog");
  EXPECT_EQ(attributed, 1);
  EXPECT_EQ(streamed, 3);  // the WARNING's records only
}

// Validates that a restart (a cursor of this boot) after a first start reports only what came
// after the cursor, as news: the history was reported once.
TEST_F(KernelWatcherTest, HistoryIsReportedOnce) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/cursor", "boot_id=boot-1\nseq=11\n").ok());
  Append(kOom);
  Append(kWarn);
  std::vector<v1::KernelEvent> events = Watch(3, 3600'000'000);
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].kind(), "warn");
  EXPECT_FALSE(events[0].before_agent());
  EXPECT_EQ(events[0].command_id(), "");  // the test's attribution: only OOM kills are c-hog's
}

// Validates that batches come at the interval set, none before one is set, and stop with Stop().
TEST(MetricsReporterTest, SamplesAtTheIntervalSet) {
  absl::Mutex mu;
  std::vector<v1::MetricsBatch> sent;
  int collected = 0;
  MetricsReporter reporter(
      [&]() -> absl::StatusOr<std::vector<v1::MetricSample>> {
        absl::MutexLock l(&mu);
        v1::MetricSample s;
        s.set_name("node_load1");
        s.set_value(++collected);
        return std::vector<v1::MetricSample>{s};
      },
      [&](v1::MetricsBatch b) {
        absl::MutexLock l(&mu);
        sent.push_back(std::move(b));
      },
      [] { return absl::FromUnixMillis(42); });
  reporter.Start();
  absl::SleepFor(absl::Milliseconds(100));
  {
    absl::MutexLock l(&mu);
    EXPECT_TRUE(sent.empty());
  }
  reporter.SetInterval(absl::Milliseconds(20));
  absl::SleepFor(absl::Milliseconds(300));
  reporter.Stop();
  absl::MutexLock l(&mu);
  EXPECT_GE(sent.size(), 3u);
  EXPECT_LE(sent.size(), 20u);
  EXPECT_EQ(sent[0].time_unix_ms(), 42);
  EXPECT_EQ(sent[0].samples(0).name(), "node_load1");
  ASSERT_TRUE(reporter.Latest().has_value());
  EXPECT_EQ(reporter.Latest()->samples(0).value(), collected);
}

}  // namespace
}  // namespace kfleet::agent

#include "agent/telemetry/kernel_watcher.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/kmsg/kmsg_cursor.h"
#include "common/log.h"

namespace kfleet::agent {
namespace {

// The cursor is written at most this often while records flow (a restart may then repeat up to
// this much of the log in the kmsg streams, never an event: see Loop).
constexpr absl::Duration kCursorEvery = absl::Seconds(2);
// An idle log ends an open report after this long (its end line may never come).
constexpr absl::Duration kIdleFlush = absl::Seconds(1);

}  // namespace

absl::StatusOr<std::unique_ptr<KernelWatcher>> KernelWatcher::Start(
    const KernelWatcherOptions& options, KernelWatcherHooks hooks) {
  const uint64_t start_us =
      options.start_monotonic_us != 0 ? options.start_monotonic_us : MonotonicNowUs();
  absl::StatusOr<std::unique_ptr<KmsgReader>> reader = KmsgReader::Open(options.kmsg_path);
  if (!reader.ok()) return reader.status();
  absl::StatusOr<KmsgCursor> cursor = LoadCursor(options.cursor_path);
  // No cursor at all: nothing was ever reported from here. A cursor that does not parse may have
  // reported anything: its records are read as news (the controller stores each record once).
  const bool first_start = absl::IsNotFound(cursor.status());
  if (cursor.ok()) {
    if (std::optional<uint64_t> after = ResumeAfter(*cursor, options.boot_id)) {
      (*reader)->SeekAfter(*after);
    }
  } else if (!absl::IsNotFound(cursor.status())) {
    LogWarning(absl::StrCat("kernel log: ", cursor.status().message(),
                            "; reading this boot's log from its start"));
  }
  int64_t boot_time =
      options.boot_time_unix_ms != 0 ? options.boot_time_unix_ms : EstimateBootTimeUnixMs();
  HistoryCutoff history(first_start, start_us);
  if (history.open()) {
    LogInfo(
        "kernel log: first start in this state dir: its records from before now are "
        "reported as history (before_agent), not as news");
  }
  std::unique_ptr<KernelWatcher> w(
      new KernelWatcher(options, std::move(hooks), *std::move(reader), boot_time, history));
  w->thread_ = std::thread([p = w.get()] { p->Loop(); });
  return w;
}

KernelWatcher::KernelWatcher(const KernelWatcherOptions& options, KernelWatcherHooks hooks,
                             std::unique_ptr<KmsgReader> reader, int64_t boot_time_unix_ms,
                             HistoryCutoff history)
    : options_(options),
      hooks_(std::move(hooks)),
      reader_(std::move(reader)),
      parser_(options.boot_id, boot_time_unix_ms),
      history_(history) {}

KernelWatcher::~KernelWatcher() { Stop(); }

void KernelWatcher::Stop() {
  reader_->Stop();
  if (thread_.joinable()) thread_.join();
}

bool KernelWatcher::Report(std::vector<v1::KernelEvent> events) {
  for (v1::KernelEvent& e : events) {
    // History is no command's: the agent ran none then. Asking would also let the guess for an
    // unnamed process pin an old report on a command started just now.
    if (history_.IsHistory(e)) {
      e.set_before_agent(true);
    } else if (hooks_.attribute) {
      e.set_command_id(hooks_.attribute(e));
    }
    absl::Status s = hooks_.report(std::move(e));
    if (!s.ok()) {
      LogError(absl::StrCat("kernel log: cannot report an event: ", s.ToString()));
      return false;
    }
  }
  return true;
}

void KernelWatcher::SaveCursorIfMoved() {
  // Only between reports: a cursor inside an open report would lose the report on a restart.
  std::optional<uint64_t> seq = reader_->last_seq();
  if (!seq.has_value() || *seq == saved_seq_ || parser_.report_open()) return;
  absl::Status s = SaveCursor(options_.cursor_path, options_.boot_id, *seq);
  if (!s.ok()) {
    LogWarning(absl::StrCat("kernel log: cannot save the cursor: ", s.ToString()));
    return;
  }
  saved_seq_ = *seq;
  saved_at_ = absl::Now();
}

void KernelWatcher::Loop() {
  uint64_t lost_reported = 0;
  while (true) {
    absl::StatusOr<std::optional<KmsgRecord>> next = reader_->Next(kIdleFlush);
    if (!next.ok()) {
      if (!absl::IsCancelled(next.status())) {
        LogError(absl::StrCat("kernel log: ", next.status().ToString(), "; no more kernel events"));
      }
      break;
    }
    if (!next->has_value()) {  // idle: end what is open, and remember where we are
      if (Report(parser_.Flush())) SaveCursorIfMoved();
      continue;
    }
    const KmsgRecord& record = **next;
    const bool history = history_.Judge(record, reader_->caught_up());
    if (!history && hooks_.on_record) hooks_.on_record(record);
    std::vector<v1::KernelEvent> events = parser_.Feed(record);
    bool had_events = !events.empty();
    if (!Report(std::move(events))) continue;
    // An event moves the cursor at once, so that a restart never reports it again.
    if (had_events || absl::Now() - saved_at_ > kCursorEvery) SaveCursorIfMoved();
    if (reader_->lost() > lost_reported) {
      LogWarning(absl::StrCat("kernel log: ", reader_->lost() - lost_reported,
                              " record(s) were overwritten before they could be read"));
      lost_reported = reader_->lost();
    }
  }
  Report(parser_.Flush());
  SaveCursorIfMoved();
}

}  // namespace kfleet::agent

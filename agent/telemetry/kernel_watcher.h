// Follows the kernel log (/dev/kmsg) for the agent: every record goes to the `kmsg` log stream
// of the commands running at the time, and the events the records make (OOM kills, oopses...;
// agent/kmsg/kernel_events.h) are attributed to a command and handed on to be reported. A cursor
// in the state dir lets a restarted agent go on where it left off in the same boot. On the first
// start in a state dir, the records from before the start are history
// (agent/kmsg/history_cutoff.h): reported as events marked before_agent, never attributed, and
// kept out of the commands' kmsg streams.
#ifndef KFLEET_AGENT_TELEMETRY_KERNEL_WATCHER_H_
#define KFLEET_AGENT_TELEMETRY_KERNEL_WATCHER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "agent/kmsg/history_cutoff.h"
#include "agent/kmsg/kernel_events.h"
#include "agent/kmsg/kmsg_reader.h"
#include "agent/kmsg/kmsg_record.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

struct KernelWatcherOptions {
  std::string kmsg_path = "/dev/kmsg";
  std::string cursor_path;        // where the cursor is kept; required
  std::string boot_id;            // this boot's; required
  int64_t boot_time_unix_ms = 0;  // 0: EstimateBootTimeUnixMs()
  // The agent's start on CLOCK_MONOTONIC (MonotonicNowUs()), for the history cut-off; 0: when
  // Start is called.
  uint64_t start_monotonic_us = 0;
};

// What the watcher needs of the rest of the agent. Called on the watcher's thread.
struct KernelWatcherHooks {
  // Each record that is not history, in order (for the kmsg streams of running commands).
  std::function<void(const KmsgRecord&)> on_record;
  // The command an event belongs to, or "" (CommandManager::AttributeEvent). Not asked for history.
  std::function<std::string(const kfleet::v1::KernelEvent&)> attribute;
  // Reports an event durably (the outbox); the cursor moves past its record only when this
  // succeeded.
  std::function<absl::Status(kfleet::v1::KernelEvent)> report;
};

class KernelWatcher {
 public:
  // Opens the log and starts following it on a thread of its own. Records of this boot up to the
  // cursor are skipped; without a cursor of this boot the whole buffer is read (events since
  // boot), as history if there was no cursor at all (see HistoryCutoff). Errors: those of opening
  // kmsg_path (e.g. PermissionDenied when not root).
  static absl::StatusOr<std::unique_ptr<KernelWatcher>> Start(const KernelWatcherOptions& options,
                                                              KernelWatcherHooks hooks);
  ~KernelWatcher();  // Stop()s

  // Stops following and joins the thread. Idempotent.
  void Stop();

  uint64_t lost() const { return reader_->lost(); }

 private:
  KernelWatcher(const KernelWatcherOptions& options, KernelWatcherHooks hooks,
                std::unique_ptr<KmsgReader> reader, int64_t boot_time_unix_ms,
                HistoryCutoff history);
  void Loop();
  // Reports `events`; false if one could not be.
  bool Report(std::vector<kfleet::v1::KernelEvent> events);
  void SaveCursorIfMoved();

  const KernelWatcherOptions options_;
  const KernelWatcherHooks hooks_;
  std::unique_ptr<KmsgReader> reader_;
  KernelEventParser parser_;
  HistoryCutoff history_;
  uint64_t saved_seq_ = 0;
  absl::Time saved_at_;
  std::thread thread_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_TELEMETRY_KERNEL_WATCHER_H_

// Reads the kernel log from /dev/kmsg record by record, waiting for new ones, resuming after a
// cursor without duplicates and counting what the kernel overwrote before it could be read.
#ifndef KFLEET_AGENT_KMSG_KMSG_READER_H_
#define KFLEET_AGENT_KMSG_KMSG_READER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/kmsg/kmsg_record.h"
#include "agent/kmsg/kmsg_source.h"

namespace kfleet::agent {

// A reader of kmsg records. Next(), SeekAfter(), last_seq() and caught_up() are called by one
// thread; Stop(), lost(), overruns() and malformed() may be called from any thread.
class KmsgReader {
 public:
  // Reads `path` (see OpenKmsgSource: /dev/kmsg, or a file or FIFO of records for tests).
  static absl::StatusOr<std::unique_ptr<KmsgReader>> Open(const std::string& path = "/dev/kmsg");
  // Reads `source`. Fails only if the eventfd that Stop() uses cannot be made.
  static absl::StatusOr<std::unique_ptr<KmsgReader>> Create(std::unique_ptr<KmsgSource> source);

  ~KmsgReader();
  KmsgReader(const KmsgReader&) = delete;
  KmsgReader& operator=(const KmsgReader&) = delete;

  // Skips the records with seq <= `seq`: those delivered before, in this boot (LoadCursor and
  // ResumeAfter say when). Call before the first Next(). If the kernel no longer holds seq + 1,
  // the records in between count as lost().
  void SeekAfter(uint64_t seq);

  // The next record, waiting up to `wait` (absl::InfiniteDuration() for ever) for one; nullopt
  // when none came in time. Records are delivered once each, in seq order; records that fail to
  // parse are skipped and counted in malformed(). Cancelled once Stop() was called, also from
  // a Next() that was waiting; other errors are those of read(2) and end the stream.
  absl::StatusOr<std::optional<KmsgRecord>> Next(absl::Duration wait);

  // Makes a waiting and every later Next() return Cancelled. Thread-safe; does not block.
  void Stop();

  // Records that were never delivered: overwritten in the kernel's buffer before they were read
  // (gaps in seq after the first record delivered, or after SeekAfter's seq).
  uint64_t lost() const { return lost_.load(std::memory_order_relaxed); }
  // Times the kernel said, with EPIPE, that records had been overwritten.
  uint64_t overruns() const { return overruns_.load(std::memory_order_relaxed); }
  // Records skipped because they did not parse.
  uint64_t malformed() const { return malformed_.load(std::memory_order_relaxed); }
  // The seq of the last record delivered, for SaveCursor.
  std::optional<uint64_t> last_seq() const { return last_seq_; }
  // True once a read found no record waiting (the end of the log, or of a file for now): every
  // record delivered after that was written after this reader had read what the log held.
  bool caught_up() const { return caught_up_; }

 private:
  KmsgReader(std::unique_ptr<KmsgSource> source, int stop_fd);

  // Waits until `fd` (if >= 0) is readable, Stop() is called, or `timeout` passed.
  void Wait(int fd, absl::Duration timeout);

  std::unique_ptr<KmsgSource> source_;
  const int stop_fd_;  // an eventfd, readable once Stop() was called
  std::atomic<bool> stopped_{false};
  std::vector<char> buffer_;
  std::optional<uint64_t> skip_through_;
  std::optional<uint64_t> last_seq_;
  bool caught_up_ = false;
  std::atomic<uint64_t> lost_{0};
  std::atomic<uint64_t> overruns_{0};
  std::atomic<uint64_t> malformed_{0};
};

// The wall time of boot, in Unix milliseconds, as the kernel log's timestamps count from it:
// now (CLOCK_REALTIME) minus the time since boot (CLOCK_MONOTONIC, which like printk's clock
// does not count suspend). For KernelEventParser.
int64_t EstimateBootTimeUnixMs();

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KMSG_KMSG_READER_H_

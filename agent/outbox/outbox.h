// The agent's durable outbox: the log chunks and sequenced items the controller must receive, kept
// on disk until it acknowledges them, so that after a disconnect, crash or restart the agent
// resends from the last acknowledgement (DESIGN.md, "Agent session protocol").
//
// On disk, in `dir`:
//   NNNNNNNN.seg  Segments of framed kfleet.v1.OutboxRecords (format in segment.h). The current
//                 segment ends once it reaches segment_bytes and is fsynced then; every Open starts
//                 a new one. A segment is deleted once all its records are acknowledged.
//   acked         A serialized kfleet.v1.Ack, written with WriteFileAtomic: the acknowledged
//                 watermark (highest acknowledged seq and, for each (command, stream) that still
//                 has records on disk, the acknowledged byte offset).
//   LOCK          flock()ed while the outbox is open, so that two agents cannot share a directory.
//
// The sequence counter needs no file of its own. On Open it is the larger of the acknowledged seq
// and the highest seq in any segment; a segment that holds a sequenced record is deleted only after
// an `acked` file covering that record is durable, so a seq is never handed out twice.
//
// Delivery is at least once. `acked` is rewritten at most every 200 ms (and always before a segment
// is deleted, and on Close), so after a crash the agent may resend records the controller had
// already acknowledged. That is harmless because the controller's writes are idempotent: log
// chunks by offset, sequenced items by seq.
#ifndef KFLEET_AGENT_OUTBOX_OUTBOX_H_
#define KFLEET_AGENT_OUTBOX_OUTBOX_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/outbox/segment.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::agent {

// Largest LogChunk.data that AppendLog accepts.
inline constexpr size_t kMaxLogChunkBytes = 1 << 20;

struct OutboxOptions {
  std::string dir;                      // created if missing
  uint64_t max_bytes = 64ull << 20;     // unacknowledged bytes (record payload) allowed on disk
  uint64_t segment_bytes = 4ull << 20;  // records go into segment files of about this size
};

// Thread model: any number of threads call AppendLog concurrently (one per command stream), a state
// thread calls AppendSequenced, the session sender calls NextBatch/Rewind and the session reader
// calls Acknowledge. Every method is thread-safe. Records are also kept in memory (at most about
// max_bytes of them, plus sequenced items), so NextBatch never reads the disk.
//
// "Bytes" here are sizes of serialized OutboxRecords (a log chunk's data plus its ids and offset;
// the 8-byte segment headers are not counted). Sequenced items count towards unacked_bytes() but
// are never refused or delayed.
class Outbox {
 public:
  // Opens (creating) the outbox in options.dir and recovers the unacknowledged records. A torn
  // record at the end of the last segment (a crash mid-write) is truncated away; any other damaged
  // record is a DataLoss error that names the file and byte offset. Fails with FailedPrecondition
  // if another Outbox holds the directory.
  static absl::StatusOr<std::unique_ptr<Outbox>> Open(OutboxOptions options);

  // Close()s. No other call may be in progress or follow.
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Appends a log chunk. Preconditions: command_id is set, data is at most kMaxLogChunkBytes, and
  // for each (command_id, stream) chunks are appended in offset order. The record is written but
  // not fsynced: a process crash keeps it (page cache), a power loss may not.
  //
  // Blocks while the chunk does not fit under max_bytes (appenders are admitted first come, first
  // served) until Acknowledge frees space or Close() is called; after Close() it returns
  // CancelledError. A chunk larger than max_bytes is accepted once the outbox is empty, so an
  // appender can never deadlock.
  absl::Status AppendLog(const kfleet::v1::LogChunk& chunk);

  // Gives `item` the next sequence number, appends it and fsyncs it before any sender can see it.
  // Returns the seq. Sequence numbers start at 1, increase by one, and never repeat across reopen,
  // even after every record was acknowledged and its segment deleted. Never blocks on max_bytes
  // (state changes are small and must not deadlock). Precondition: one of item's oneof is set.
  absl::StatusOr<uint64_t> AppendSequenced(kfleet::v1::SequencedItem item);

  // For the session sender: adds to `out` the unacknowledged records after the send cursor, in
  // append order, up to about `max_bytes` of records (at least one if any is pending), and advances
  // the cursor past them. Within one batch every log chunk was appended before every sequenced item
  // (the batch ends rather than put a chunk after an item), so a receiver that applies `logs` and
  // then `sequenced` applies them in outbox order. Waits up to `wait` for a record if none is
  // pending. Returns false if nothing was added (timeout, or closed).
  bool NextBatch(kfleet::v1::Items* out, size_t max_bytes, absl::Duration wait);

  // For a new session: the send cursor goes back to the first unacknowledged record.
  void Rewind();

  // Drops the records `ack` covers (sequenced: seq <= ack.seq; log: offset + size <= ack's offset
  // for that (command_id, stream)), which wakes blocked appenders, and deletes the segment files
  // whose records are all acknowledged, except the one being written. Parts of `ack` about records
  // the outbox does not hold are ignored. A Welcome's last_seq and stored offsets can be passed
  // here as an Ack. Disk errors are logged and retried on the next call: failing to record an
  // acknowledgement only means resending. Ignored after Close().
  void Acknowledge(const kfleet::v1::Ack& ack);

  // Distinct command ids that have unacknowledged log records, sorted (for Hello.open_command_ids).
  std::vector<std::string> PendingCommandIds() const;

  // Bytes of records appended and not acknowledged yet.
  uint64_t unacked_bytes() const;

  // Highest seq ever assigned (0 if none).
  uint64_t last_seq() const;
  // The controller has stored items up to `seq` from an earlier life of this host (its state dir
  // was wiped, or lives on a guest's tmpfs): number new items after it, durably. No-op if the
  // outbox is already past `seq`. Call with a Welcome's last_seq before sending.
  void AdvanceSeq(uint64_t seq);

  // Wakes everyone blocked in AppendLog/NextBatch; later appends fail with CancelledError and later
  // NextBatch calls return false at once. Syncs the current segment and the acknowledged watermark
  // to disk. Idempotent.
  void Close();

 private:
  using LogKey = std::pair<std::string, int>;  // (command_id, stream)

  struct Entry {
    uint64_t segment;
    uint64_t bytes;
    kfleet::v1::OutboxRecord record;
  };
  struct Segment {
    uint64_t live = 0;      // unacknowledged records in it
    std::set<LogKey> keys;  // every (command, stream) with a record in it, acknowledged or not
  };

  explicit Outbox(OutboxOptions options);

  std::string PathOf(absl::string_view name) const;
  absl::Status Recover();
  absl::Status LockDir();

  // Appends one record to the current segment (starting one if there is none or it is full) and
  // returns the segment's id. On error, nothing of the record is left in the file.
  absl::StatusOr<uint64_t> WriteRecord(absl::string_view payload, bool sync)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status StartSegment() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  // Makes a record written to `segment` visible to NextBatch and counted as unacknowledged.
  void Publish(uint64_t segment, uint64_t bytes, kfleet::v1::OutboxRecord record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Drop(std::map<uint64_t, Entry>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsAcked(const kfleet::v1::OutboxRecord& record) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Fits(uint64_t bytes) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  kfleet::v1::Ack AckedSnapshot() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Writes `acked` if the watermark changed since the last write.
  absl::Status PersistAcked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ack_mu_);
  // Deletes segments without unacknowledged records (except the current one) and forgets the
  // watermarks of (command, stream)s that no longer have records on disk. The watermark on disk
  // must already cover every record in them.
  void DeleteDoneSegments() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ack_mu_);

  const OutboxOptions options_;
  int lock_fd_ = -1;

  // Lock order: write_mu_ before mu_, ack_mu_ before mu_; write_mu_ and ack_mu_ are never held
  // together. Disk I/O happens under write_mu_ or ack_mu_ only, so a slow fsync does not stall
  // NextBatch or Acknowledge's bookkeeping.

  // Serializes writes to the current segment, and orders them: a record is published before
  // write_mu_ is released, so append order, file order and NextBatch order agree.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::unique_ptr<SegmentWriter> writer_ ABSL_GUARDED_BY(write_mu_);  // null until the first append
  uint64_t next_segment_id_ ABSL_GUARDED_BY(write_mu_) = 1;

  // Serializes Acknowledge and Close: writing `acked` and deleting segments.
  absl::Mutex ack_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool ack_dirty_ ABSL_GUARDED_BY(ack_mu_) = false;  // watermark changed since `acked` was written
  absl::Time ack_written_ ABSL_GUARDED_BY(ack_mu_) = absl::InfinitePast();

  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Unacknowledged records by append index (from 1).
  std::map<uint64_t, Entry> records_ ABSL_GUARDED_BY(mu_);
  uint64_t next_index_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;  // next append index NextBatch may send
  // Indexes of unacknowledged records per (command, stream) and of sequenced records, in append
  // (and so offset or seq) order: acknowledgements drop a prefix of each.
  std::map<LogKey, std::deque<uint64_t>> pending_logs_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> pending_seq_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Segment> segments_ ABSL_GUARDED_BY(mu_);  // every segment file on disk
  uint64_t current_segment_ ABSL_GUARDED_BY(mu_) = 0;          // being written; 0 if none
  uint64_t unacked_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reserved_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // admitted appends not yet published
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;  // AppendLog admission, first come first served
  uint64_t admit_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // Acknowledged watermark. acked_offsets_ has an entry for every (command, stream) with a record
  // on disk, 0 until acknowledged.
  uint64_t acked_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<LogKey, uint64_t> acked_offsets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_OUTBOX_OUTBOX_H_

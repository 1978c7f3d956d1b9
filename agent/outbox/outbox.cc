#include "agent/outbox/outbox.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/outbox/segment.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

using kfleet::v1::OutboxRecord;

constexpr char kAckedFile[] = "acked";
constexpr char kLockFile[] = "LOCK";
static_assert(kMaxLogChunkBytes + 4096 <= kMaxSegmentRecordBytes,
              "a full log chunk and its ids must fit in a segment record");
constexpr absl::Duration kAckedWriteInterval = absl::Milliseconds(200);

}  // namespace

absl::StatusOr<std::unique_ptr<Outbox>> Outbox::Open(OutboxOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("outbox: dir is empty");
  if (options.max_bytes == 0 || options.segment_bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("outbox ", options.dir, ": max_bytes and segment_bytes must be positive (got ",
                     options.max_bytes, " and ", options.segment_bytes, ")"));
  }
  std::unique_ptr<Outbox> outbox(new Outbox(std::move(options)));
  RETURN_IF_ERROR(outbox->Recover());
  return outbox;
}

Outbox::Outbox(OutboxOptions options) : options_(std::move(options)) {}

Outbox::~Outbox() {
  Close();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::string Outbox::PathOf(absl::string_view name) const {
  return absl::StrCat(options_.dir, "/", name);
}

absl::Status Outbox::LockDir() {
  std::string path = PathOf(kLockFile);
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "outbox ", options_.dir,
          " is in use by another process (is another agent running with this state dir?)"));
    }
    return ErrnoStatus(absl::StrCat("lock ", path), errno);
  }
  return absl::OkStatus();
}

absl::Status Outbox::Recover() {
  RETURN_IF_ERROR(MakeDirs(options_.dir));
  RETURN_IF_ERROR(LockDir());

  kfleet::v1::Ack acked;
  std::string acked_path = PathOf(kAckedFile);
  absl::StatusOr<std::string> acked_data = ReadFile(acked_path);
  if (acked_data.ok()) {
    // Written atomically, so a file that does not parse was damaged after the fact.
    if (!acked.ParseFromString(*acked_data)) {
      return absl::DataLossError(
          absl::StrCat(acked_path,
                       ": unparseable acknowledgement watermark; the outbox is damaged (move its "
                       "directory aside to start empty, losing unsent items)"));
    }
  } else if (!absl::IsNotFound(acked_data.status())) {
    return acked_data.status();
  }
  ASSIGN_OR_RETURN(std::vector<uint64_t> ids, ListSegments(options_.dir));

  // Open() runs before anyone else can see the object; the locks only satisfy the annotations.
  absl::MutexLock ack_lock(&ack_mu_);
  {
    absl::MutexLock write_lock(&write_mu_);
    absl::MutexLock lock(&mu_);
    acked_seq_ = acked.seq();
    last_seq_ = acked.seq();
    for (const kfleet::v1::LogOffset& log : acked.logs()) {
      acked_offsets_[LogKey(log.command_id(), log.stream())] = log.offset();
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      std::string path = PathOf(SegmentFileName(ids[i]));
      ASSIGN_OR_RETURN(ScannedSegment scanned, ScanSegment(path));
      if (scanned.torn) {
        // Finished segments are fsynced, so only the last one can end in an interrupted append.
        if (i + 1 != ids.size()) {
          return absl::DataLossError(absl::StrCat(
              path, ": torn record at byte offset ", scanned.valid_bytes,
              " in a segment that is not the last; the outbox is damaged (move its directory "
              "aside to start empty, losing unsent items)"));
        }
        RETURN_IF_ERROR(TruncateFile(path, scanned.valid_bytes));
      }
      Segment& segment = segments_[ids[i]];
      for (SegmentRecord& r : scanned.records) {
        if (r.record.has_sequenced()) {
          last_seq_ = std::max(last_seq_, r.record.sequenced().seq());
        } else {
          LogKey key(r.record.log().command_id(), r.record.log().stream());
          segment.keys.insert(key);
          acked_offsets_.try_emplace(key, 0);
        }
        if (!IsAcked(r.record)) Publish(ids[i], r.bytes, std::move(r.record));
      }
    }
    // Appends go to a new segment, so that a torn tail can only ever be in the last one.
    next_segment_id_ = ids.empty() ? 1 : ids.back() + 1;
  }
  DeleteDoneSegments();
  return absl::OkStatus();
}

absl::Status Outbox::AppendLog(const kfleet::v1::LogChunk& chunk) {
  if (chunk.command_id().empty()) {
    return absl::InvalidArgumentError("outbox: log chunk without a command_id");
  }
  if (chunk.data().size() > kMaxLogChunkBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "outbox: log chunk for command ", chunk.command_id(), " has ", chunk.data().size(),
        " bytes; split it into chunks of at most ", kMaxLogChunkBytes));
  }
  OutboxRecord record;
  *record.mutable_log() = chunk;
  std::string payload = record.SerializeAsString();
  const uint64_t bytes = payload.size();
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return absl::CancelledError("outbox is closed");
    // Tickets admit appenders in arrival order, so small chunks cannot starve a big one.
    const uint64_t ticket = next_ticket_++;
    auto admitted = [this, ticket, bytes]() {
      mu_.AssertReaderHeld();
      return closed_ || (ticket == admit_ticket_ && Fits(bytes));
    };
    mu_.Await(absl::Condition(&admitted));
    if (closed_) {
      return absl::CancelledError("outbox closed while waiting for acknowledgements to free space");
    }
    ++admit_ticket_;
    reserved_bytes_ += bytes;
  }
  absl::MutexLock write_lock(&write_mu_);
  absl::StatusOr<uint64_t> segment = WriteRecord(payload, /*sync=*/false);
  absl::MutexLock lock(&mu_);
  reserved_bytes_ -= bytes;
  if (!segment.ok()) return segment.status();
  Publish(*segment, bytes, std::move(record));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Outbox::AppendSequenced(kfleet::v1::SequencedItem item) {
  if (item.item_case() == kfleet::v1::SequencedItem::ITEM_NOT_SET) {
    return absl::InvalidArgumentError("outbox: sequenced item with no item set");
  }
  // Holding write_mu_ from choosing the seq to publishing it keeps seqs in file order and gapless:
  // a failed write consumes no seq.
  absl::MutexLock write_lock(&write_mu_);
  uint64_t seq;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return absl::CancelledError("outbox is closed");
    seq = last_seq_ + 1;
  }
  item.set_seq(seq);
  OutboxRecord record;
  *record.mutable_sequenced() = std::move(item);
  std::string payload = record.SerializeAsString();
  ASSIGN_OR_RETURN(uint64_t segment, WriteRecord(payload, /*sync=*/true));
  absl::MutexLock lock(&mu_);
  last_seq_ = seq;
  Publish(segment, payload.size(), std::move(record));
  return seq;
}

absl::StatusOr<uint64_t> Outbox::WriteRecord(absl::string_view payload, bool sync) {
  if (payload.size() > kMaxSegmentRecordBytes) {
    return absl::InvalidArgumentError(absl::StrCat("outbox: a record of ", payload.size(),
                                                   " bytes is over the limit of ",
                                                   kMaxSegmentRecordBytes, " (ids too long?)"));
  }
  // A broken writer must stay the last segment (see SegmentWriter::Append), so it is never rotated.
  if (writer_ != nullptr) RETURN_IF_ERROR(writer_->status());
  if (writer_ == nullptr || writer_->size() >= options_.segment_bytes) {
    RETURN_IF_ERROR(StartSegment());
  }
  RETURN_IF_ERROR(writer_->Append(payload, sync));
  return writer_->id();
}

absl::Status Outbox::StartSegment() {
  // Appends skip fsync; syncing each segment as it ends means only the last segment can end in a
  // torn record after a power loss.
  if (writer_ != nullptr) RETURN_IF_ERROR(writer_->Sync());
  ASSIGN_OR_RETURN(std::unique_ptr<SegmentWriter> writer,
                   SegmentWriter::Create(options_.dir, next_segment_id_));
  ++next_segment_id_;
  writer_ = std::move(writer);
  absl::MutexLock lock(&mu_);
  current_segment_ = writer_->id();
  segments_.try_emplace(writer_->id());
  return absl::OkStatus();
}

void Outbox::Publish(uint64_t segment, uint64_t bytes, OutboxRecord record) {
  const uint64_t index = next_index_++;
  Segment& s = segments_[segment];
  ++s.live;
  if (record.has_log()) {
    LogKey key(record.log().command_id(), record.log().stream());
    s.keys.insert(key);
    acked_offsets_.try_emplace(key, 0);
    pending_logs_[key].push_back(index);
  } else {
    pending_seq_.push_back(index);
  }
  unacked_bytes_ += bytes;
  records_.emplace(index, Entry{segment, bytes, std::move(record)});
}

void Outbox::Drop(std::map<uint64_t, Entry>::iterator it) {
  --segments_[it->second.segment].live;
  unacked_bytes_ -= it->second.bytes;
  records_.erase(it);
}

bool Outbox::IsAcked(const OutboxRecord& record) const {
  if (record.has_sequenced()) return record.sequenced().seq() <= acked_seq_;
  auto it = acked_offsets_.find(LogKey(record.log().command_id(), record.log().stream()));
  return it != acked_offsets_.end() &&
         record.log().offset() + record.log().data().size() <= it->second;
}

bool Outbox::Fits(uint64_t bytes) const {
  const uint64_t used = unacked_bytes_ + reserved_bytes_;
  return used == 0 || used + bytes <= options_.max_bytes;
}

bool Outbox::NextBatch(kfleet::v1::Items* out, size_t max_bytes, absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() {
    mu_.AssertReaderHeld();
    return closed_ || records_.lower_bound(cursor_) != records_.end();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), wait);
  if (closed_) return false;
  size_t bytes = 0;
  bool added = false;
  bool has_sequenced = false;
  for (auto it = records_.lower_bound(cursor_); it != records_.end(); ++it) {
    const Entry& entry = it->second;
    if (added && bytes + entry.bytes > max_bytes) break;
    if (entry.record.has_log()) {
      if (has_sequenced) break;  // keeps every chunk of a batch before its sequenced items
      *out->add_logs() = entry.record.log();
    } else {
      *out->add_sequenced() = entry.record.sequenced();
      has_sequenced = true;
    }
    bytes += entry.bytes;
    added = true;
    cursor_ = it->first + 1;
  }
  return added;
}

void Outbox::Rewind() {
  absl::MutexLock lock(&mu_);
  cursor_ = 0;
}

void Outbox::Acknowledge(const kfleet::v1::Ack& ack) {
  absl::MutexLock ack_lock(&ack_mu_);
  bool segment_done = false;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    // A seq beyond any assigned one is not about this outbox's records.
    const uint64_t seq = std::min(ack.seq(), last_seq_);
    if (seq > acked_seq_) {
      acked_seq_ = seq;
      ack_dirty_ = true;
    }
    while (!pending_seq_.empty()) {
      auto it = records_.find(pending_seq_.front());
      if (it->second.record.sequenced().seq() > acked_seq_) break;
      Drop(it);
      pending_seq_.pop_front();
    }
    for (const kfleet::v1::LogOffset& log : ack.logs()) {
      LogKey key(log.command_id(), log.stream());
      auto watermark = acked_offsets_.find(key);
      if (watermark == acked_offsets_.end()) continue;  // no record of it on disk
      if (log.offset() > watermark->second) {
        watermark->second = log.offset();
        ack_dirty_ = true;
      }
      auto pending = pending_logs_.find(key);
      if (pending == pending_logs_.end()) continue;
      std::deque<uint64_t>& queue = pending->second;
      while (!queue.empty()) {
        auto it = records_.find(queue.front());
        if (!IsAcked(it->second.record)) break;
        Drop(it);
        queue.pop_front();
      }
      if (queue.empty()) pending_logs_.erase(pending);
    }
    for (const auto& [id, segment] : segments_) {
      if (segment.live == 0 && id != current_segment_) segment_done = true;
    }
  }
  if (ack_dirty_ && (segment_done || absl::Now() - ack_written_ >= kAckedWriteInterval)) {
    if (absl::Status status = PersistAcked(); !status.ok()) {
      LogWarning(absl::StrCat("outbox: could not record acknowledgements (will retry): ",
                              status.ToString()));
      return;
    }
  }
  if (segment_done) DeleteDoneSegments();
}

kfleet::v1::Ack Outbox::AckedSnapshot() const {
  kfleet::v1::Ack ack;
  ack.set_seq(acked_seq_);
  for (const auto& [key, offset] : acked_offsets_) {
    if (offset == 0) continue;
    kfleet::v1::LogOffset* log = ack.add_logs();
    log->set_command_id(key.first);
    log->set_stream(static_cast<kfleet::v1::LogStream>(key.second));
    log->set_offset(offset);
  }
  return ack;
}

absl::Status Outbox::PersistAcked() {
  if (!ack_dirty_) return absl::OkStatus();
  kfleet::v1::Ack snapshot;
  {
    absl::MutexLock lock(&mu_);
    snapshot = AckedSnapshot();
  }
  // Only holders of ack_mu_ move the watermark, so the snapshot stays current while it is written.
  RETURN_IF_ERROR(WriteFileAtomic(PathOf(kAckedFile), snapshot.SerializeAsString()));
  ack_dirty_ = false;
  ack_written_ = absl::Now();
  return absl::OkStatus();
}

void Outbox::DeleteDoneSegments() {
  // Deleting a segment whose acknowledged records the file on disk does not cover could lose the
  // highest seq (see the header), so never delete with a dirty watermark.
  if (ack_dirty_) return;
  std::vector<uint64_t> done;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, segment] : segments_) {
      if (segment.live == 0 && id != current_segment_) done.push_back(id);
    }
  }
  if (done.empty()) return;
  std::vector<uint64_t> deleted;
  for (uint64_t id : done) {
    std::string path = PathOf(SegmentFileName(id));
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) {
      deleted.push_back(id);
    } else {
      LogWarning(absl::StrCat("outbox: could not delete acknowledged segment (will retry): ",
                              ErrnoStatus(absl::StrCat("unlink ", path), errno).ToString()));
    }
  }
  absl::MutexLock lock(&mu_);
  for (uint64_t id : deleted) segments_.erase(id);
  std::set<LogKey> on_disk;
  for (const auto& [id, segment] : segments_) {
    on_disk.insert(segment.keys.begin(), segment.keys.end());
  }
  for (auto it = acked_offsets_.begin(); it != acked_offsets_.end();) {
    it = on_disk.count(it->first) ? std::next(it) : acked_offsets_.erase(it);
  }
}

std::vector<std::string> Outbox::PendingCommandIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const auto& [key, queue] : pending_logs_) {
    if (ids.empty() || ids.back() != key.first) ids.push_back(key.first);
  }
  return ids;
}

uint64_t Outbox::unacked_bytes() const {
  absl::MutexLock lock(&mu_);
  return unacked_bytes_;
}

void Outbox::AdvanceSeq(uint64_t seq) {
  {
    // write_mu_ as in AppendSequenced, so no seq is being handed out meanwhile.
    absl::MutexLock write_lock(&write_mu_);
    absl::MutexLock lock(&mu_);
    if (closed_ || seq <= last_seq_) return;
    last_seq_ = seq;
    // Recorded as acknowledged so that a reopen continues after it (see the header).
    acked_seq_ = std::max(acked_seq_, seq);
  }
  absl::MutexLock ack_lock(&ack_mu_);
  ack_dirty_ = true;
  if (absl::Status status = PersistAcked(); !status.ok()) {
    LogWarning(absl::StrCat("outbox: could not record the advanced seq: ", status.ToString()));
  }
}

uint64_t Outbox::last_seq() const {
  absl::MutexLock lock(&mu_);
  return last_seq_;
}

void Outbox::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
  }
  {
    absl::MutexLock write_lock(&write_mu_);
    if (writer_ != nullptr) {
      if (absl::Status status = writer_->Sync(); !status.ok()) {
        LogWarning(absl::StrCat("outbox: ", status.ToString()));
      }
    }
  }
  absl::MutexLock ack_lock(&ack_mu_);
  if (absl::Status status = PersistAcked(); !status.ok()) {
    LogWarning(
        absl::StrCat("outbox: could not record acknowledgements on close: ", status.ToString()));
  }
}

}  // namespace kfleet::agent

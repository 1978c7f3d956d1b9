// The outbox's segment files. A segment is a run of records, each framed as
//   [u32 length][u32 crc32][payload]
// little-endian, where crc32 is zlib's crc32 of the payload and the payload is a serialized
// kfleet.v1.OutboxRecord. Segments are named by a positive id, "00000042.seg", and appended to in
// id order.
#ifndef KFLEET_AGENT_OUTBOX_SEGMENT_H_
#define KFLEET_AGENT_OUTBOX_SEGMENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::agent {

// Bytes of framing before each payload.
inline constexpr uint64_t kSegmentHeaderBytes = 8;
// Largest payload a record may have: a 1 MiB log chunk plus its ids, with room to spare. A longer
// length on disk is damage.
inline constexpr uint32_t kMaxSegmentRecordBytes = (1 << 20) + (64 << 10);

// "00000042.seg" for id 42.
std::string SegmentFileName(uint64_t id);

// The ids of the segment files in `dir`, ascending. Other files are ignored.
absl::StatusOr<std::vector<uint64_t>> ListSegments(const std::string& dir);

// `payload` framed as one record.
std::string FrameRecord(absl::string_view payload);

struct SegmentRecord {
  kfleet::v1::OutboxRecord record;
  uint64_t bytes;  // payload length
};

struct ScannedSegment {
  std::vector<SegmentRecord> records;
  uint64_t valid_bytes = 0;  // the whole, valid records end here
  bool torn = false;         // the bytes after valid_bytes look like an interrupted append
};

// Reads every record of the segment at `path`. A bad record that runs to the end of the file, or is
// followed only by zeros (a power loss can leave a zero-filled tail), is an interrupted append:
// reading stops there with `torn` set. Any other bad record is a DataLoss error that names the file
// and the byte offset.
absl::StatusOr<ScannedSegment> ScanSegment(const std::string& path);

// Cuts the file at `path` to `size` bytes and fsyncs it.
absl::Status TruncateFile(const std::string& path, uint64_t size);

// Appends records to one new segment file. Not thread-safe.
class SegmentWriter {
 public:
  // Creates segment `id` in `dir` (it must not exist yet) and makes its name durable.
  static absl::StatusOr<std::unique_ptr<SegmentWriter>> Create(const std::string& dir, uint64_t id);
  // Closes the file without syncing it.
  ~SegmentWriter();
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Appends `payload` as one record with write(), then fdatasync()s if `sync`. On error nothing of
  // the record stays in the file; if it cannot be cut off again, the writer is broken: status()
  // and every later Append fail with DataLoss, and the file must stay the last segment so that
  // the next Open treats the leftover as a torn tail.
  absl::Status Append(absl::string_view payload, bool sync);
  // fdatasync()s what was appended.
  absl::Status Sync();

  // OK unless broken.
  const absl::Status& status() const { return status_; }
  uint64_t id() const { return id_; }
  const std::string& path() const { return path_; }
  // Bytes of the file that hold whole records.
  uint64_t size() const { return size_; }

 private:
  SegmentWriter(uint64_t id, std::string path, int fd) : id_(id), path_(std::move(path)), fd_(fd) {}

  const uint64_t id_;
  const std::string path_;
  const int fd_;
  uint64_t size_ = 0;
  absl::Status status_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_OUTBOX_SEGMENT_H_

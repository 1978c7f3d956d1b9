#include "agent/outbox/segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return v;
}

uint32_t Crc32(absl::string_view data) {
  return static_cast<uint32_t>(::crc32(::crc32(0L, Z_NULL, 0),
                                       reinterpret_cast<const Bytef*>(data.data()),
                                       static_cast<uInt>(data.size())));
}

// True for "NNNNNNNN.seg" with a positive number.
bool ParseSegmentFileName(absl::string_view name, uint64_t* id) {
  if (!absl::ConsumeSuffix(&name, ".seg") || name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(name, id) && *id > 0;
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(absl::StrCat("write ", path), errno);
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

std::string SegmentFileName(uint64_t id) { return absl::StrFormat("%08d.seg", id); }

absl::StatusOr<std::vector<uint64_t>> ListSegments(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(absl::StrCat("open directory ", dir), errno);
  std::vector<uint64_t> ids;
  while (struct dirent* e = ::readdir(d)) {
    uint64_t id;
    if (ParseSegmentFileName(e->d_name, &id)) ids.push_back(id);
  }
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::string FrameRecord(absl::string_view payload) {
  std::string out(kSegmentHeaderBytes, '\0');
  PutU32(&out[0], static_cast<uint32_t>(payload.size()));
  PutU32(&out[4], Crc32(payload));
  out.append(payload.data(), payload.size());
  return out;
}

absl::StatusOr<ScannedSegment> ScanSegment(const std::string& path) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(path, std::numeric_limits<size_t>::max()));
  ScannedSegment out;
  size_t pos = 0;
  while (pos < data.size()) {
    absl::string_view rest = absl::string_view(data).substr(pos);
    std::string problem;
    bool reaches_end = true;  // whether the bad record, as framed, extends to the end of the file
    if (rest.size() < kSegmentHeaderBytes) {
      problem = "incomplete record header";
    } else {
      const uint32_t length = GetU32(rest.data());
      if (length == 0 || length > kMaxSegmentRecordBytes) {
        problem = absl::StrCat("impossible record length ", length);
        reaches_end = false;
      } else if (rest.size() - kSegmentHeaderBytes < length) {
        problem = "record runs past the end of the file";
      } else {
        reaches_end = rest.size() - kSegmentHeaderBytes == length;
        absl::string_view payload = rest.substr(kSegmentHeaderBytes, length);
        SegmentRecord record{kfleet::v1::OutboxRecord(), length};
        if (Crc32(payload) != GetU32(rest.data() + 4)) {
          problem = "checksum mismatch";
        } else if (!record.record.ParseFromArray(payload.data(), static_cast<int>(length)) ||
                   record.record.item_case() == kfleet::v1::OutboxRecord::ITEM_NOT_SET) {
          problem = "unparseable record";
        } else {
          out.records.push_back(std::move(record));
          pos += kSegmentHeaderBytes + length;
          continue;
        }
      }
    }
    if (reaches_end || rest.find_first_not_of('\0') == absl::string_view::npos) {
      out.torn = true;
      break;
    }
    return absl::DataLossError(absl::StrCat(
        path, ": ", problem, " at byte offset ", pos,
        "; the outbox is damaged (move its directory aside to start empty, losing unsent items)"));
  }
  out.valid_bytes = pos;
  return out;
}

absl::Status TruncateFile(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
  absl::Status status;
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    status = ErrnoStatus(absl::StrCat("truncate ", path), errno);
  } else if (::fsync(fd) != 0) {
    status = ErrnoStatus(absl::StrCat("fsync ", path), errno);
  }
  ::close(fd);
  return status;
}

absl::StatusOr<std::unique_ptr<SegmentWriter>> SegmentWriter::Create(const std::string& dir,
                                                                     uint64_t id) {
  std::string path = absl::StrCat(dir, "/", SegmentFileName(id));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(absl::StrCat("create ", path), errno);
  // The name must be durable before a record in the file is reported durable.
  if (absl::Status status = SyncDir(dir); !status.ok()) {
    ::close(fd);
    ::unlink(path.c_str());
    return status;
  }
  return std::unique_ptr<SegmentWriter>(new SegmentWriter(id, std::move(path), fd));
}

SegmentWriter::~SegmentWriter() { ::close(fd_); }

absl::Status SegmentWriter::Append(absl::string_view payload, bool sync) {
  RETURN_IF_ERROR(status_);
  std::string framed = FrameRecord(payload);
  absl::Status status = WriteAll(fd_, framed, path_);
  if (status.ok() && sync && ::fdatasync(fd_) != 0) {
    status = ErrnoStatus(absl::StrCat("fdatasync ", path_), errno);
  }
  if (!status.ok()) {
    // A partial record left in place would be damage in the middle of the file once more records
    // follow it.
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      status_ = absl::DataLossError(absl::StrCat(path_, ": could not cut off a failed write (",
                                                 status.message(),
                                                 "); restart the agent to recover the outbox"));
    }
    return status;
  }
  size_ += framed.size();
  return absl::OkStatus();
}

absl::Status SegmentWriter::Sync() {
  RETURN_IF_ERROR(status_);
  if (::fdatasync(fd_) != 0) return ErrnoStatus(absl::StrCat("fdatasync ", path_), errno);
  return absl::OkStatus();
}

}  // namespace kfleet::agent

#include "controller/logs/log_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/ids.h"

namespace kfleet::controller {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string LogStore::PathOf(const std::string& command_id, v1::LogStream stream) const {
  return absl::StrCat(root_, "/", command_id, ".",
                      absl::AsciiStrToLower(v1::LogStream_Name(stream)));
}

absl::StatusOr<std::vector<v1::LogOffset>> LogStore::WriteDurable(
    const std::vector<const v1::LogChunk*>& chunks) {
  // Group by file, keeping the order of chunks within a file.
  std::map<std::pair<std::string, int>, std::vector<const v1::LogChunk*>> by_file;
  for (const v1::LogChunk* c : chunks) {
    if (!IsValidId(c->command_id()) || !v1::LogStream_IsValid(c->stream()) ||
        c->stream() == v1::LOG_STREAM_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          absl::StrCat("log chunk with invalid command id or stream: \"",
                       c->command_id().substr(0, 64), "\" ", c->stream()));
    }
    by_file[{c->command_id(), c->stream()}].push_back(c);
  }
  std::vector<v1::LogOffset> stored;
  for (auto& [key, list] : by_file) {
    auto stream = static_cast<v1::LogStream>(key.second);
    std::string path = PathOf(key.first, stream);
    Fd f;
    f.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (f.fd < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
    struct stat st;
    if (::fstat(f.fd, &st) != 0) return ErrnoStatus(absl::StrCat("stat ", path), errno);
    uint64_t size = st.st_size;
    for (const v1::LogChunk* c : list) {
      if (c->offset() > size) {
        return absl::FailedPreconditionError(
            absl::StrCat("log chunk for ", key.first, " at offset ", c->offset(),
                         " leaves a gap: ", size, " bytes are stored"));
      }
      size_t done = 0;
      const std::string& data = c->data();
      while (done < data.size()) {
        ssize_t n = ::pwrite(f.fd, data.data() + done, data.size() - done, c->offset() + done);
        if (n < 0) {
          if (errno == EINTR) continue;
          return ErrnoStatus(absl::StrCat("write ", path), errno);
        }
        done += n;
      }
      uint64_t end = c->offset() + data.size();
      if (end > size) {
        bytes_written_ += end - size;
        size = end;
      }
    }
    if (::fdatasync(f.fd) != 0) return ErrnoStatus(absl::StrCat("fdatasync ", path), errno);
    v1::LogOffset& o = stored.emplace_back();
    o.set_command_id(key.first);
    o.set_stream(stream);
    o.set_offset(size);
  }
  return stored;
}

uint64_t LogStore::Size(const std::string& command_id, v1::LogStream stream) const {
  struct stat st;
  if (!IsValidId(command_id) || ::stat(PathOf(command_id, stream).c_str(), &st) != 0) return 0;
  return st.st_size;
}

absl::Status LogStore::Remove(const std::string& command_id) {
  if (!IsValidId(command_id)) return absl::InvalidArgumentError("invalid command id");
  for (auto stream : {v1::STDOUT, v1::STDERR, v1::CONSOLE, v1::KMSG}) {
    std::string path = PathOf(command_id, stream);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(absl::StrCat("unlink ", path), errno);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LogStore::Read(const std::string& command_id, v1::LogStream stream,
                                           uint64_t offset, size_t max_bytes) const {
  if (!IsValidId(command_id)) return absl::InvalidArgumentError("invalid command id");
  std::string path = PathOf(command_id, stream);
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) {
    if (errno == ENOENT) return std::string();
    return ErrnoStatus(absl::StrCat("open ", path), errno);
  }
  std::string out(max_bytes, '\0');
  size_t got = 0;
  while (got < max_bytes) {
    ssize_t n = ::pread(f.fd, out.data() + got, max_bytes - got, offset + got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(absl::StrCat("read ", path), errno);
    }
    if (n == 0) break;
    got += n;
  }
  out.resize(got);
  return out;
}

}  // namespace kfleet::controller

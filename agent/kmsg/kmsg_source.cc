#include "agent/kmsg/kmsg_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace kfleet::agent {
namespace {

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// /dev/kmsg: the kernel hands out one record per read(2).
class DeviceSource : public KmsgSource {
 public:
  explicit DeviceSource(int fd) : fd_(fd) {}

  ssize_t Read(char* buf, size_t size) override {
    while (true) {
      ssize_t n = ::read(fd_.get(), buf, size);
      if (n >= 0) return n;
      if (errno != EINTR) return -errno;
    }
  }
  int fd() const override { return fd_.get(); }

 private:
  Fd fd_;
};

// A file or FIFO of records separated by newlines, a record's dictionary lines starting with a
// space.
class StreamSource : public KmsgSource {
 public:
  explicit StreamSource(int fd) : fd_(fd) {}

  ssize_t Read(char* buf, size_t size) override {
    bool drained = false;  // nothing more can be read right now
    bool at_end = false;   // ... because the file ended (rather than EAGAIN)
    while (true) {
      size_t length = RecordLength(drained, at_end);
      if (length > 0) {
        std::string record = buffer_.substr(0, length);
        buffer_.erase(0, length);
        if (record == "\n") continue;
        if (record.size() > size) return -EMSGSIZE;
        std::memcpy(buf, record.data(), record.size());
        return static_cast<ssize_t>(record.size());
      }
      if (drained) return at_end ? 0 : -EAGAIN;
      if (buffer_.size() > kMaxBuffered) {
        // No record ends within the limit: drop it, up to the start of the next line.
        size_t newline = buffer_.find('\n');
        skipping_line_ = newline == std::string::npos;
        buffer_.erase(0, skipping_line_ ? buffer_.size() : newline + 1);
        return -EMSGSIZE;
      }
      char chunk[16384];
      ssize_t n = ::read(fd_.get(), chunk, sizeof chunk);
      if (n > 0) {
        Append(chunk, static_cast<size_t>(n));
      } else if (n == 0) {
        drained = at_end = true;
      } else if (errno == EAGAIN) {
        drained = true;
      } else if (errno != EINTR) {
        return -errno;
      }
    }
  }
  int fd() const override { return fd_.get(); }

 private:
  static constexpr size_t kMaxBuffered = 64 << 10;

  void Append(const char* data, size_t size) {
    if (skipping_line_) {
      const char* newline = static_cast<const char*>(std::memchr(data, '\n', size));
      if (newline == nullptr) return;
      skipping_line_ = false;
      size -= static_cast<size_t>(newline + 1 - data);
      data = newline + 1;
    }
    buffer_.append(data, size);
  }

  // Length of the first whole record in buffer_, or 0 if it may not be whole yet. A record ends
  // where a line that does not start with a space begins; when nothing more can be read
  // (`drained`), also at the end of its last complete line, and at the end of the file
  // (`at_end`) even without a newline.
  size_t RecordLength(bool drained, bool at_end) const {
    size_t end = buffer_.find('\n');
    while (end != std::string::npos) {
      size_t next = end + 1;
      if (next == buffer_.size()) return drained ? next : 0;
      if (buffer_[next] != ' ') return next;
      end = buffer_.find('\n', next);
    }
    return at_end ? buffer_.size() : 0;
  }

  Fd fd_;
  std::string buffer_;
  bool skipping_line_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KmsgSource>> OpenKmsgSource(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat("open ", path), errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(absl::StrCat("fstat ", path), err);
  }
  if (S_ISCHR(st.st_mode)) return std::make_unique<DeviceSource>(fd);
  return std::make_unique<StreamSource>(fd);
}

}  // namespace kfleet::agent

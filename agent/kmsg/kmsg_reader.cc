#include "agent/kmsg/kmsg_reader.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <utility>

#include "absl/status/status.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

// How often Read is retried when the source has nothing to poll: a file at its end.
constexpr absl::Duration kRetryInterval = absl::Milliseconds(20);

}  // namespace

absl::StatusOr<std::unique_ptr<KmsgReader>> KmsgReader::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<KmsgSource> source, OpenKmsgSource(path));
  return Create(std::move(source));
}

absl::StatusOr<std::unique_ptr<KmsgReader>> KmsgReader::Create(std::unique_ptr<KmsgSource> source) {
  int stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) return ErrnoStatus("eventfd", errno);
  return std::unique_ptr<KmsgReader>(new KmsgReader(std::move(source), stop_fd));
}

KmsgReader::KmsgReader(std::unique_ptr<KmsgSource> source, int stop_fd)
    : source_(std::move(source)), stop_fd_(stop_fd), buffer_(kMaxKmsgRecordBytes) {}

KmsgReader::~KmsgReader() { ::close(stop_fd_); }

void KmsgReader::SeekAfter(uint64_t seq) { skip_through_ = seq; }

void KmsgReader::Stop() {
  stopped_.store(true);
  uint64_t one = 1;
  // The eventfd's counter cannot overflow from these writes; a failure leaves stopped_ set,
  // which the next wakeup sees.
  (void)!::write(stop_fd_, &one, sizeof one);
}

absl::StatusOr<std::optional<KmsgRecord>> KmsgReader::Next(absl::Duration wait) {
  const absl::Time deadline =
      wait == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + wait;
  while (true) {
    if (stopped_.load()) return absl::CancelledError("kmsg reader stopped");
    ssize_t n = source_->Read(buffer_.data(), buffer_.size());
    if (n > 0) {
      absl::StatusOr<KmsgRecord> record =
          ParseKmsgRecord(absl::string_view(buffer_.data(), static_cast<size_t>(n)));
      if (!record.ok()) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      const uint64_t seq = record->seq;
      if (skip_through_ && seq <= *skip_through_) continue;
      if (last_seq_ && seq <= *last_seq_) continue;
      std::optional<uint64_t> before = last_seq_ ? last_seq_ : skip_through_;
      if (before && seq > *before + 1) {
        lost_.fetch_add(seq - *before - 1, std::memory_order_relaxed);
      }
      last_seq_ = seq;
      return std::optional<KmsgRecord>(*std::move(record));
    }
    if (n == -EPIPE) {
      // The kernel overwrote records since the last read; the next read returns the oldest left.
      overruns_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (n == -EMSGSIZE) {
      malformed_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (n == -EINTR) continue;
    if (n != 0 && n != -EAGAIN) {
      return ErrnoStatus("read kmsg", static_cast<int>(-n));
    }
    caught_up_ = true;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::optional<KmsgRecord>();
    const int fd = n == -EAGAIN ? source_->fd() : -1;
    Wait(fd, fd < 0 ? std::min(left, kRetryInterval) : left);
  }
}

void KmsgReader::Wait(int fd, absl::Duration timeout) {
  struct pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
  int timeout_ms = -1;
  if (timeout != absl::InfiniteDuration()) {
    timeout_ms = static_cast<int>(std::min<int64_t>(
        INT_MAX, absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)))));
  }
  // poll ignores entries with a negative fd.
  int r = ::poll(fds, 2, timeout_ms);
  (void)r;  // EINTR or readiness: the caller reads again either way
}

int64_t EstimateBootTimeUnixMs() {
  struct timespec real;
  struct timespec mono;
  ::clock_gettime(CLOCK_REALTIME, &real);
  ::clock_gettime(CLOCK_MONOTONIC, &mono);
  const int64_t real_ms = int64_t{real.tv_sec} * 1000 + real.tv_nsec / 1000000;
  const int64_t mono_ms = int64_t{mono.tv_sec} * 1000 + mono.tv_nsec / 1000000;
  return real_ms - mono_ms;
}

}  // namespace kfleet::agent

// Where KmsgReader gets its records: the read(2) calls it makes, behind a seam, so that tests can
// produce what only /dev/kmsg does (EPIPE when records were overwritten before they were read).
#ifndef KFLEET_AGENT_KMSG_KMSG_SOURCE_H_
#define KFLEET_AGENT_KMSG_KMSG_SOURCE_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace kfleet::agent {

// A source of raw /dev/kmsg records. Used by one thread at a time.
class KmsgSource {
 public:
  virtual ~KmsgSource() = default;

  // Reads one record into `buf` as read(2) on /dev/kmsg does and returns its length (> 0); or 0
  // when the source is at its end for now (a regular file or a FIFO without a writer, which may
  // grow later); or -errno: -EAGAIN when no record is ready, -EPIPE (once) when records were
  // overwritten before they were read, the next read returning the oldest record left; -EINVAL
  // when `size` is too small for the record; -EMSGSIZE when a stream's record was too long and
  // was dropped.
  virtual ssize_t Read(char* buf, size_t size) = 0;

  // A file descriptor that polls readable when Read may have a record, or -1: then the reader
  // retries Read every few milliseconds.
  virtual int fd() const = 0;
};

// Opens `path` (O_RDONLY | O_NONBLOCK). A character device such as /dev/kmsg gives one record per
// read(2), from the oldest one the kernel still holds. Anything else (a regular file, a FIFO:
// fixtures and tests) is read as a stream of records each ending in "\n", a record running on
// over the lines that follow it and start with a space; empty lines are skipped. Errors are
// those of open(2), named with the path.
absl::StatusOr<std::unique_ptr<KmsgSource>> OpenKmsgSource(const std::string& path);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KMSG_KMSG_SOURCE_H_

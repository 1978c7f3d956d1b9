// Command logs as files under <root>/<command id>.<stream>, addressed by byte offset. Writes are
// idempotent by offset: writing the same bytes at the same offset again changes nothing, so an
// agent may resend after any disconnect.
#ifndef KFLEET_CONTROLLER_LOGS_LOG_STORE_H_
#define KFLEET_CONTROLLER_LOGS_LOG_STORE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kfleet/v1/agent.pb.h"

namespace kfleet::controller {

class LogStore {
 public:
  // `root` must exist. Thread-safe as long as one (command, stream) is written by one caller at a
  // time (the session of the command's host).
  explicit LogStore(std::string root) : root_(std::move(root)) {}

  // Writes the chunks and makes them durable (fdatasync of each file touched) before returning.
  // For each chunk: an offset past the stored end is a gap (FailedPrecondition, nothing of that
  // chunk written); an offset inside stored data rewrites the same bytes. Returns, per (command,
  // stream) touched, the bytes stored after the write.
  absl::StatusOr<std::vector<kfleet::v1::LogOffset>> WriteDurable(
      const std::vector<const kfleet::v1::LogChunk*>& chunks);

  // Bytes stored for (command, stream); 0 if none.
  uint64_t Size(const std::string& command_id, kfleet::v1::LogStream stream) const;

  // Up to `max_bytes` from `offset`; empty at or past the end.
  absl::StatusOr<std::string> Read(const std::string& command_id, kfleet::v1::LogStream stream,
                                   uint64_t offset, size_t max_bytes) const;

  // Deletes every stream of the command (a pruned schedule run); nothing there is not an error.
  absl::Status Remove(const std::string& command_id);

  // Total bytes stored by this process since start (a metric).
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  std::string PathOf(const std::string& command_id, kfleet::v1::LogStream stream) const;

  std::string root_;
  std::atomic<uint64_t> bytes_written_{0};
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_LOGS_LOG_STORE_H_

// Where reading the kernel log left off, kept in the agent's state directory so that a restarted
// agent neither repeats nor skips events: the boot and the seq of the last record handled.
#ifndef KFLEET_AGENT_KMSG_KMSG_CURSOR_H_
#define KFLEET_AGENT_KMSG_KMSG_CURSOR_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet::agent {

struct KmsgCursor {
  std::string boot_id;  // /proc/sys/kernel/random/boot_id of the boot the seq belongs to
  uint64_t seq = 0;     // the last record handled
};

// Writes the cursor to `path` atomically and durably (WriteFileAtomic) as two lines,
// "boot_id=...\nseq=...\n". InvalidArgument for a boot_id that is empty or holds whitespace or
// "=".
absl::Status SaveCursor(const std::string& path, absl::string_view boot_id, uint64_t seq);

// Reads what SaveCursor wrote. NotFound when there is no file; InvalidArgument, naming the file,
// when it is not in SaveCursor's form.
absl::StatusOr<KmsgCursor> LoadCursor(const std::string& path);

// The seq to pass to KmsgReader::SeekAfter when the log of boot `boot_id` is read: the cursor's
// if it is of that boot, else nullopt (another boot's log starts afresh).
std::optional<uint64_t> ResumeAfter(const KmsgCursor& cursor, absl::string_view boot_id);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_KMSG_KMSG_CURSOR_H_

// The agent's durable record of the commands it accepted, one small file per command under
// <state-dir>/commands. A command is recorded (fsynced) before it runs, so it is never run twice:
// not after a reconnect, not after an agent restart, not after a reboot.
#ifndef KFLEET_AGENT_COMMANDS_COMMAND_BOOK_H_
#define KFLEET_AGENT_COMMANDS_COMMAND_BOOK_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kfleet::agent {

struct CommandRecord {
  std::string command_id;
  enum class State { kAccepted, kRunning, kFinished } state = State::kAccepted;
  pid_t pgid = 0;           // while running: the process group
  uint64_t start_time = 0;  // of the group leader, to never signal a recycled pid
};

// Not thread-safe for one command id; different ids may be used from different threads.
class CommandBook {
 public:
  // Creates `dir` if needed.
  static absl::StatusOr<CommandBook> Open(const std::string& dir);

  bool Known(const std::string& command_id) const;
  // Durable before it returns. AlreadyExists if the command was accepted before.
  absl::Status Accept(const std::string& command_id);
  absl::Status SetRunning(const std::string& command_id, pid_t pgid, uint64_t start_time);
  absl::Status SetFinished(const std::string& command_id);
  // Commands accepted or running, i.e. those a crash interrupted when called at startup.
  absl::StatusOr<std::vector<CommandRecord>> Unfinished() const;

 private:
  explicit CommandBook(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Write(const CommandRecord& record);
  std::string PathOf(const std::string& command_id) const;

  std::string dir_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_COMMANDS_COMMAND_BOOK_H_

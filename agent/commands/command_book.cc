#include "agent/commands/command_book.h"

#include <dirent.h>
#include <sys/stat.h>

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

// One line: "<state> <pgid> <start_time>".
std::string Encode(const CommandRecord& r) {
  const char* state = r.state == CommandRecord::State::kAccepted  ? "accepted"
                      : r.state == CommandRecord::State::kRunning ? "running"
                                                                  : "finished";
  return absl::StrCat(state, " ", r.pgid, " ", r.start_time, "\n");
}

bool Decode(const std::string& text, CommandRecord* r) {
  std::vector<std::string> parts = absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  if (parts.size() != 3) return false;
  if (parts[0] == "accepted") {
    r->state = CommandRecord::State::kAccepted;
  } else if (parts[0] == "running") {
    r->state = CommandRecord::State::kRunning;
  } else if (parts[0] == "finished") {
    r->state = CommandRecord::State::kFinished;
  } else {
    return false;
  }
  int pgid = 0;
  return absl::SimpleAtoi(parts[1], &pgid) && absl::SimpleAtoi(parts[2], &r->start_time) &&
         (r->pgid = pgid, true);
}

}  // namespace

absl::StatusOr<CommandBook> CommandBook::Open(const std::string& dir) {
  RETURN_IF_ERROR(MakeDirs(dir));
  return CommandBook(dir);
}

std::string CommandBook::PathOf(const std::string& command_id) const {
  return absl::StrCat(dir_, "/", command_id);
}

bool CommandBook::Known(const std::string& command_id) const {
  struct stat st;
  return IsValidId(command_id) && ::stat(PathOf(command_id).c_str(), &st) == 0;
}

absl::Status CommandBook::Write(const CommandRecord& record) {
  if (!IsValidId(record.command_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid command id \"", record.command_id.substr(0, 64), "\""));
  }
  return WriteFileAtomic(PathOf(record.command_id), Encode(record));
}

absl::Status CommandBook::Accept(const std::string& command_id) {
  if (Known(command_id)) {
    return absl::AlreadyExistsError(absl::StrCat("command ", command_id, " was accepted before"));
  }
  return Write({command_id, CommandRecord::State::kAccepted, 0, 0});
}

absl::Status CommandBook::SetRunning(const std::string& command_id, pid_t pgid,
                                     uint64_t start_time) {
  return Write({command_id, CommandRecord::State::kRunning, pgid, start_time});
}

absl::Status CommandBook::SetFinished(const std::string& command_id) {
  return Write({command_id, CommandRecord::State::kFinished, 0, 0});
}

absl::StatusOr<std::vector<CommandRecord>> CommandBook::Unfinished() const {
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir_.c_str()), closedir);
  if (!d) return ErrnoStatus(absl::StrCat("opendir ", dir_), errno);
  std::vector<CommandRecord> out;
  while (dirent* e = readdir(d.get())) {
    std::string name = e->d_name;
    if (!IsValidId(name) || absl::EndsWith(name, ".tmp")) continue;
    absl::StatusOr<std::string> text = ReadFile(PathOf(name), 4096);
    if (!text.ok()) continue;
    CommandRecord r;
    r.command_id = name;
    if (!Decode(*text, &r)) {
      // A record we cannot read was at least accepted: treat it as interrupted.
      r.state = CommandRecord::State::kAccepted;
    }
    if (r.state != CommandRecord::State::kFinished) out.push_back(r);
  }
  return out;
}

}  // namespace kfleet::agent

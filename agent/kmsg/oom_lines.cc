#include "agent/kmsg/oom_lines.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace kfleet::agent {
namespace {

constexpr absl::string_view kKilledProcess = "Killed process ";
constexpr absl::string_view kTotalVm = ") total-vm:";

// Leading decimal digits of `*text`, consumed.
bool ConsumeInt(absl::string_view* text, int* value) {
  size_t n = 0;
  while (n < text->size() && absl::ascii_isdigit(static_cast<unsigned char>((*text)[n]))) ++n;
  if (n == 0 || !absl::SimpleAtoi(text->substr(0, n), value)) return false;
  text->remove_prefix(n);
  return true;
}

// "3156416kB" -> 3156416.
bool ParseKb(absl::string_view text, uint64_t* kb) {
  absl::ConsumeSuffix(&text, "kB");
  return !text.empty() && absl::SimpleAtoi(text, kb);
}

// The message after a syslog or journal prefix that ends in "TAG[pid]: " or "TAG: ", or the
// whole line when it starts with `first_word` (journalctl -o cat). nullopt when neither.
std::optional<absl::string_view> MessageOf(absl::string_view line, absl::string_view tag,
                                           absl::string_view first_word) {
  line = absl::StripTrailingAsciiWhitespace(line);
  if (absl::StartsWith(line, first_word)) return line;
  size_t at = line.find(tag);
  while (at != absl::string_view::npos) {
    absl::string_view rest = line.substr(at + tag.size());
    if (absl::ConsumePrefix(&rest, "[")) {
      size_t close = rest.find("]: ");
      if (close != absl::string_view::npos) return rest.substr(close + 3);
    } else if (absl::ConsumePrefix(&rest, ": ")) {
      return rest;
    }
    at = line.find(tag, at + 1);
  }
  return std::nullopt;
}

}  // namespace

std::optional<kfleet::v1::OomKill> ParseOomKilledLine(absl::string_view message) {
  size_t at = message.find(kKilledProcess);
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view prefix = message.substr(0, at);
  if (!prefix.empty() && !absl::EndsWith(prefix, ": ")) return std::nullopt;
  absl::string_view rest = message.substr(at + kKilledProcess.size());
  kfleet::v1::OomKill oom;
  int pid = 0;
  if (!ConsumeInt(&rest, &pid) || !absl::ConsumePrefix(&rest, " (")) return std::nullopt;
  size_t comm_end = rest.rfind(kTotalVm);
  if (comm_end == absl::string_view::npos) return std::nullopt;
  oom.set_pid(pid);
  oom.set_comm(std::string(rest.substr(0, comm_end)));
  bool have_total_vm = false;
  bool have_anon_rss = false;
  // "total-vm:XkB, anon-rss:XkB, file-rss:XkB, shmem-rss:XkB, UID:N pgtables:XkB oom_score_adj:N"
  absl::string_view fields = rest.substr(comm_end + 2);
  for (absl::string_view token : absl::StrSplit(fields, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    size_t colon = token.find(':');
    if (colon == absl::string_view::npos) continue;
    absl::string_view key = token.substr(0, colon);
    absl::string_view value = token.substr(colon + 1);
    uint64_t kb = 0;
    int number = 0;
    if (key == "total-vm" && ParseKb(value, &kb)) {
      oom.set_total_vm_kb(kb);
      have_total_vm = true;
    } else if (key == "anon-rss" && ParseKb(value, &kb)) {
      oom.set_anon_rss_kb(kb);
      have_anon_rss = true;
    } else if (key == "file-rss" && ParseKb(value, &kb)) {
      oom.set_file_rss_kb(kb);
    } else if (key == "shmem-rss" && ParseKb(value, &kb)) {
      oom.set_shmem_rss_kb(kb);
    } else if (key == "UID" && absl::SimpleAtoi(value, &number)) {
      oom.set_uid(number);
    } else if (key == "oom_score_adj" && absl::SimpleAtoi(value, &number)) {
      oom.set_oom_score_adj(number);
    }
  }
  if (!have_total_vm || !have_anon_rss) return std::nullopt;
  oom.set_memcg(absl::EndsWith(prefix, "Memory cgroup out of memory: "));
  oom.set_killer("kernel");
  return oom;
}

std::optional<OomSummary> ParseOomSummary(absl::string_view message) {
  absl::string_view body = message;
  if (!absl::ConsumePrefix(&body, "oom-kill:constraint=")) return std::nullopt;
  body = absl::StripTrailingAsciiWhitespace(body);
  // task, pid and uid come last and comm may hold anything, so they are found from the end; the
  // keys before them in the order the kernel prints them. A value runs to the next key found.
  size_t uid_at = body.rfind(",uid=");
  size_t pid_at = body.rfind(",pid=", uid_at);
  size_t task_at =
      pid_at == absl::string_view::npos ? body.rfind(",task=") : body.rfind(",task=", pid_at);
  std::vector<std::pair<size_t, absl::string_view>> keys = {{0, ""}};  // "" is the constraint
  size_t from = 0;
  for (absl::string_view key :
       {",nodemask=", ",cpuset=", ",mems_allowed=", ",oom_memcg=", ",global_oom", ",task_memcg="}) {
    size_t at = body.find(key, from);
    if (at == absl::string_view::npos || (task_at != absl::string_view::npos && at >= task_at)) {
      continue;
    }
    keys.emplace_back(at, key);
    from = at + key.size();
  }
  if (task_at != absl::string_view::npos) keys.emplace_back(task_at, ",task=");
  if (pid_at != absl::string_view::npos && (task_at == absl::string_view::npos || pid_at > task_at))
    keys.emplace_back(pid_at, ",pid=");
  if (uid_at != absl::string_view::npos && (pid_at == absl::string_view::npos || uid_at > pid_at))
    keys.emplace_back(uid_at, ",uid=");

  OomSummary summary;
  for (size_t i = 0; i < keys.size(); ++i) {
    size_t begin = keys[i].first + keys[i].second.size();
    size_t end = i + 1 < keys.size() ? keys[i + 1].first : body.size();
    if (begin > end) continue;  // a key that overlaps the next one: not ours
    absl::string_view key = keys[i].second;
    absl::string_view value = body.substr(begin, end - begin);
    if (key.empty()) {
      summary.constraint = std::string(value);
    } else if (key == ",oom_memcg=") {
      summary.oom_memcg = std::string(value);
    } else if (key == ",task_memcg=") {
      summary.task_memcg = std::string(value);
    } else if (key == ",task=") {
      summary.task = std::string(value);
    } else if (key == ",pid=") {
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &summary.pid)) summary.pid = 0;
    } else if (key == ",uid=") {
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &summary.uid)) summary.uid = -1;
    }
  }
  return summary;
}

std::optional<OomChoice> ParseOomChoiceLine(absl::string_view message) {
  OomChoice choice;
  absl::string_view rest = message;
  if (absl::ConsumePrefix(&rest, "Memory cgroup out of memory: Kill process ")) {
    choice.memcg = true;
  } else if (!absl::ConsumePrefix(&rest, "Out of memory: Kill process ")) {
    return std::nullopt;
  }
  if (!ConsumeInt(&rest, &choice.pid) || !absl::StrContains(rest, " or sacrifice child")) {
    return std::nullopt;
  }
  return choice;
}

bool IsOomHeader(absl::string_view message) {
  return absl::StrContains(message, " invoked oom-killer: ");
}

std::optional<UserspaceKill> ParseEarlyoomLine(absl::string_view line) {
  std::optional<absl::string_view> message = MessageOf(line, "earlyoom", "sending SIG");
  if (!message) return std::nullopt;
  absl::string_view rest = *message;
  // sig == 0 is earlyoom's self-test, not a kill.
  if (!absl::ConsumePrefix(&rest, "sending SIG")) return std::nullopt;
  size_t to = rest.find(" to process ");
  if (to == absl::string_view::npos) return std::nullopt;
  rest.remove_prefix(to + 12);
  UserspaceKill kill;
  kill.message = std::string(*message);
  kfleet::v1::OomKill& oom = kill.oom;
  int number = 0;
  if (!ConsumeInt(&rest, &number)) return std::nullopt;
  oom.set_pid(number);
  if (absl::ConsumePrefix(&rest, " uid ")) {
    if (!ConsumeInt(&rest, &number)) return std::nullopt;
    oom.set_uid(number);
  }
  if (!absl::ConsumePrefix(&rest, " \"")) return std::nullopt;
  // The name ends at the quote before the scores; the name itself may contain quotes.
  size_t name_end = absl::string_view::npos;
  for (absl::string_view end : {"\": oom_score ", "\": badness "}) {
    name_end = std::min(name_end, rest.find(end));
  }
  if (name_end == absl::string_view::npos) return std::nullopt;
  oom.set_comm(std::string(rest.substr(0, name_end)));
  absl::string_view scores = rest.substr(name_end + 3);
  scores = scores.substr(0, scores.find(", cmdline \""));
  for (absl::string_view part : absl::StrSplit(scores, ", ")) {
    if (absl::ConsumePrefix(&part, "VmRSS ")) {
      uint64_t mib = 0;
      if (absl::ConsumeSuffix(&part, " MiB") && absl::SimpleAtoi(part, &mib)) {
        oom.set_anon_rss_kb(mib * 1024);
      }
    } else if (absl::ConsumePrefix(&part, "oom_score_adj ")) {
      if (absl::SimpleAtoi(part, &number)) oom.set_oom_score_adj(number);
    }
  }
  oom.set_killer("earlyoom");
  return kill;
}

std::optional<UserspaceKill> ParseSystemdOomdLine(absl::string_view line) {
  std::optional<absl::string_view> message = MessageOf(line, "systemd-oomd", "Killed /");
  if (!message) message = MessageOf(line, "systemd-oomd", "Marked /");
  if (!message) return std::nullopt;
  absl::string_view rest = *message;
  absl::string_view due_to;
  if (absl::ConsumePrefix(&rest, "Killed /")) {
    due_to = " due to ";
  } else if (absl::ConsumePrefix(&rest, "Marked /")) {
    due_to = " for killing due to ";
  } else {
    return std::nullopt;
  }
  size_t end = rest.find(due_to);
  if (end == absl::string_view::npos) return std::nullopt;
  UserspaceKill kill;
  kill.message = std::string(*message);
  kill.oom.set_task_memcg(absl::StrCat("/", rest.substr(0, end)));
  absl::string_view reason = rest.substr(end + due_to.size());
  if (absl::ConsumePrefix(&reason, "memory pressure for ")) {
    kill.oom.set_oom_memcg(std::string(reason.substr(0, reason.find(" being "))));
  }
  kill.oom.set_killer("systemd-oomd");
  return kill;
}

}  // namespace kfleet::agent

#include "agent/kmsg/kernel_reports.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace kfleet::agent {
namespace {

bool StartsWithAny(absl::string_view text, std::initializer_list<absl::string_view> prefixes) {
  for (absl::string_view prefix : prefixes) {
    if (absl::StartsWith(text, prefix)) return true;
  }
  return false;
}

// "RSP: 0018:...", "R10: ...", "FS:  ...", "CR2: ...", "PKRU: ..." (x86); "x29: ...", "pc : ...",
// "lr : ...", "sp : ..." (arm64).
bool IsRegisterLine(absl::string_view message) {
  if (StartsWithAny(message, {"pc : ", "lr : ", "sp : ", "pstate: "})) return true;
  size_t colon = message.find(':');
  if (colon < 2 || colon > 5 || colon == absl::string_view::npos) return false;
  absl::string_view name = message.substr(0, colon);
  bool upper = absl::ascii_isupper(static_cast<unsigned char>(name[0]));
  bool arm = name[0] == 'x';
  for (size_t i = 1; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (upper && !absl::ascii_isupper(c) && !absl::ascii_isdigit(c)) return false;
    if (arm && !absl::ascii_isdigit(c)) return false;
  }
  return upper || arm;
}

}  // namespace

absl::string_view ReportKind(absl::string_view message) {
  if (absl::StartsWith(message, "BUG: KASAN: ")) return "kasan";
  absl::string_view lockup = message;
  if (!absl::ConsumePrefix(&lockup, "watchdog: ")) absl::ConsumePrefix(&lockup, "NMI watchdog: ");
  if (absl::StartsWith(lockup, "BUG: soft lockup")) return "soft_lockup";
  if (absl::StartsWith(message, "Kernel panic - not syncing")) return "panic";
  if (absl::StartsWith(message, "WARNING: ")) return "warn";
  if (absl::StartsWith(message, "INFO: task ") &&
      absl::StrContains(message, " blocked for more than ")) {
    return "hung_task";
  }
  if (StartsWithAny(message, {"Oops: ", "BUG: unable to handle ", "BUG: kernel NULL pointer",
                              "general protection fault", "invalid opcode: ",
                              "Unable to handle kernel ", "Internal error: Oops"})) {
    return "oops";
  }
  if (StartsWithAny(message, {"kernel BUG at ", "BUG: "})) return "bug";
  return "";
}

bool EndsReport(absl::string_view kind, absl::string_view message) {
  if (kind == "panic") return absl::StartsWith(message, "---[ end Kernel panic");
  if (kind == "kasan") {
    absl::string_view line = absl::StripAsciiWhitespace(message);
    return line.size() >= 20 && line.find_first_not_of('=') == absl::string_view::npos;
  }
  if (kind == "oops" || kind == "bug" || kind == "warn") {
    return absl::StartsWith(message, "---[ end trace");
  }
  return false;
}

bool IsDieLine(absl::string_view message) {
  return StartsWithAny(message, {"Oops: ", "invalid opcode: ", "general protection fault",
                                 "Internal error: ", "stack segment: ", "double fault: "});
}

bool LooksLikeReportLine(absl::string_view message) {
  if (absl::StartsWith(message, " ") || absl::StartsWith(message, "\t")) return true;
  if (StartsWithAny(message, {"task:",
                              "Call Trace:",
                              "Call trace:",
                              "CPU:",
                              "Hardware name:",
                              "Workqueue:",
                              "RIP:",
                              "Code:",
                              "Modules linked in:",
                              "Kernel Offset:",
                              "irq event stamp:",
                              "hardirqs last",
                              "softirqs last",
                              "Sending NMI",
                              "NMI backtrace",
                              "<TASK>",
                              "</TASK>",
                              "Stack:",
                              "Tainted:",
                              "#PF: ",
                              "PGD ",
                              "Mem abort info:"})) {
    return true;
  }
  return IsRegisterLine(message);
}

bool IsCutHere(absl::string_view message) { return absl::StrContains(message, "[ cut here ]"); }

}  // namespace kfleet::agent

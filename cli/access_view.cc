#include "cli/access_view.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "cli/format.h"
#include "cli/table.h"
#include "common/duration.h"

namespace kfleet::cli {
namespace {

// "Key:" padded so that the values line up, as kctl job shows a job.
std::string Field(absl::string_view key, absl::string_view value) {
  constexpr size_t kWidth = 16;
  return absl::StrCat(key, std::string(kWidth - std::min(kWidth - 1, key.size()), ' '),
                      value.empty() ? "-" : value, "\n");
}

// "2024-05-01 13:03:04 (in 1h30m)": to the nearest minute below two days, which the expiry of a
// token just made (its ttl less a few milliseconds) must not read one unit short.
std::string FormatExpiry(int64_t unix_ms, absl::Time now, absl::TimeZone tz) {
  if (unix_ms == 0) return "";
  absl::Time at = absl::FromUnixMillis(unix_ms);
  std::string when;
  if (at < now) {
    when = absl::StrCat(FormatAge(now - at), " ago");
  } else if (at - now < absl::Minutes(1)) {
    when = absl::StrCat("in ", FormatAge(at - now));
  } else {
    absl::Duration left = absl::Trunc(at - now + absl::Seconds(30), absl::Minutes(1));
    when = absl::StrCat("in ", left < absl::Hours(48) ? ShortDuration(left) : FormatAge(left));
  }
  return absl::StrCat(FormatTime(unix_ms, tz), " (", when, ")");
}

}  // namespace

std::string ShellQuote(absl::string_view text) {
  bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           absl::string_view("_-.,:/=@%+").find(c) != absl::string_view::npos;
  });
  if (plain) return std::string(text);
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

std::string AgentCommandLine(absl::string_view address, const v1::CreateTokenResponse& token,
                             absl::string_view name) {
  std::string line = absl::StrCat("kfleet-agent --controller ", ShellQuote(address), " --token ",
                                  ShellQuote(token.token()), " --ca-fingerprint ",
                                  ShellQuote(token.ca_fingerprint()));
  if (!name.empty()) absl::StrAppend(&line, " --name ", ShellQuote(name));
  if (!token.labels().empty()) {
    absl::StrAppend(&line, " --labels ", ShellQuote(FormatLabels(token.labels())));
  }
  return line;
}

std::string RenderToken(const v1::CreateTokenResponse& token, absl::string_view name,
                        absl::string_view agent_command, absl::Time now, absl::TimeZone tz) {
  std::string out;
  out += Field("Token:", token.token());
  out += Field("CA fingerprint:", token.ca_fingerprint());
  out += Field("Expires:", FormatExpiry(token.expires_unix_ms(), now, tz));
  out += Field("Uses:", absl::StrCat(token.uses()));
  out += Field("Labels:", FormatLabels(token.labels()));
  if (!name.empty()) out += Field("Host name:", name);
  absl::StrAppend(&out,
                  "\nThe controller keeps only a hash of the token: it is shown this once. "
                  "Start an agent with it:\n  ",
                  agent_command, "\n");
  return out;
}

std::string RenderRevoked(absl::string_view kind, absl::string_view name,
                          const v1::RevokeResponse& revoked) {
  size_t n = revoked.serials_size();
  std::string certificates =
      n == 0 ? "no certificate was still valid"
             : absl::StrCat(n, n == 1 ? " certificate (serial " : " certificates (serials ",
                            absl::StrJoin(revoked.serials(), ", "), ")");
  uint32_t sessions = revoked.sessions_ended();
  return absl::StrCat("revoked ", kind, " ", name, ": ", certificates, "; ", sessions,
                      sessions == 1 ? " session" : " sessions", " ended\n");
}

v1::ListAuditResponse SortedAudit(v1::ListAuditResponse audit) {
  std::stable_sort(audit.mutable_entries()->begin(), audit.mutable_entries()->end(),
                   [](const v1::AuditEntry& a, const v1::AuditEntry& b) {
                     return a.time_unix_ms() < b.time_unix_ms();
                   });
  return audit;
}

std::string RenderAuditTable(const v1::ListAuditResponse& audit, bool wide, absl::TimeZone tz) {
  std::vector<std::string> headers = {"TIME", "WHO", "ROLE", "METHOD", "TARGET"};
  if (wide) headers.push_back("PEER");
  headers.push_back("RESULT");
  Table table(headers);
  v1::ListAuditResponse sorted = SortedAudit(audit);
  for (const v1::AuditEntry& e : sorted.entries()) {
    std::vector<std::string> row = {FormatTime(e.time_unix_ms(), tz), e.who(), e.role(), e.method(),
                                    e.target()};
    if (wide) row.push_back(e.peer());
    row.push_back(e.result());
    table.AddRow(std::move(row));
  }
  return table.Render();
}

std::string RenderIdentity(const v1::Identity& identity, absl::TimeZone tz) {
  Table table({"KIND", "NAME", "ROLE", "SERIAL", "EXPIRES"});
  table.AddRow({identity.kind(), identity.name(), identity.role(), identity.serial(),
                FormatTime(identity.not_after_unix_ms(), tz)});
  return table.Render();
}

}  // namespace kfleet::cli

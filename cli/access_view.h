// How kctl shows what AccessService answers: a new enrolment token, revoked certificates, the
// audit log and the caller's identity.
#ifndef KFLEET_CLI_ACCESS_VIEW_H_
#define KFLEET_CLI_ACCESS_VIEW_H_

#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kfleet/v1/security.pb.h"

namespace kfleet::cli {

// `text` as one shell word: as it is when it holds only characters no shell treats specially,
// else in single quotes.
std::string ShellQuote(absl::string_view text);

// The kfleet-agent command line that enrols with `token` at the controller `address`: --token and
// --ca-fingerprint, and --name and --labels when the token is bound to them (the agent must ask
// for what the token grants).
std::string AgentCommandLine(absl::string_view address, const v1::CreateTokenResponse& token,
                             absl::string_view name);

// The token, the CA fingerprint, expiry (in `tz`, and how far from `now`), uses, labels, the name
// it is bound to, and `agent_command`.
std::string RenderToken(const v1::CreateTokenResponse& token, absl::string_view name,
                        absl::string_view agent_command, absl::Time now, absl::TimeZone tz);

// "revoked KIND NAME: 2 certificates (serials a1, b2); 1 session ended\n".
std::string RenderRevoked(absl::string_view kind, absl::string_view name,
                          const v1::RevokeResponse& revoked);

// TIME WHO ROLE METHOD TARGET RESULT, oldest first; `wide` adds PEER before RESULT.
std::string RenderAuditTable(const v1::ListAuditResponse& audit, bool wide, absl::TimeZone tz);

// The audit entries oldest first (a stable sort by time).
v1::ListAuditResponse SortedAudit(v1::ListAuditResponse audit);

// KIND NAME ROLE SERIAL EXPIRES, one row.
std::string RenderIdentity(const v1::Identity& identity, absl::TimeZone tz);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_ACCESS_VIEW_H_

// kctl token create, audit, whoami, hosts revoke and user revoke against a FakeAccessService.
#include "cli/access_commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cli/access_view.h"
#include "cli/kctl_test_runner.h"
#include "google/protobuf/util/json_util.h"

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

int64_t At(absl::Duration from_start) {
  return absl::ToUnixMillis(KctlTestRunner::Start() + from_start);
}

v1::AuditEntry Entry(absl::Duration from_start, const std::string& who, const std::string& role,
                     const std::string& method, const std::string& target, const std::string& peer,
                     const std::string& result) {
  v1::AuditEntry e;
  e.set_time_unix_ms(At(from_start));
  e.set_who(who);
  e.set_role(role);
  e.set_method(method);
  e.set_target(target);
  e.set_peer(peer);
  e.set_result(result);
  return e;
}

v1::RevokeResponse Revoked(std::vector<std::string> serials, uint32_t sessions) {
  v1::RevokeResponse r;
  for (const std::string& s : serials) r.add_serials(s);
  r.set_sessions_ended(sessions);
  return r;
}

class AccessCommandsTest : public ::testing::Test {
 protected:
  AccessCommandsTest() {
    v1::CreateTokenResponse& t = kctl_.access.token;
    t.set_token("kft_abc");
    t.set_ca_fingerprint("sha256:00ff");
    t.set_expires_unix_ms(At(absl::Hours(1)));
    t.set_uses(3);
    (*t.mutable_labels())["pool"] = "lab";
    (*t.mutable_labels())["role"] = "mail";
    t.set_ca_pem("-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n");

    // Not in time order, as a controller may send them.
    v1::ListAuditResponse& a = kctl_.access.audit;
    *a.add_entries() = Entry(-absl::Minutes(10), "alice", "operator", "FleetService/SubmitJob",
                             "j-1", "127.0.0.1:5555", "OK");
    *a.add_entries() = Entry(-absl::Minutes(20), "admin", "admin", "AccessService/CreateUser",
                             "alice", "127.0.0.1:4444", "OK");
    *a.add_entries() =
        Entry(-absl::Minutes(5), "bob", "viewer", "FleetService/CancelJob", "j-1", "127.0.0.1:6666",
              "PERMISSION_DENIED: role viewer may not cancel jobs");

    v1::Identity& i = kctl_.access.identity;
    i.set_kind("user");
    i.set_name("alice");
    i.set_role("operator");
    i.set_serial("3f2a9c01d4e5b677");
    i.set_not_after_unix_ms(At(absl::Hours(24 * 365)));

    kctl_.access.hosts["guest-1"] = Revoked({"ab12"}, 1);
    kctl_.access.users["alice"] = Revoked({"3f2a", "9c01"}, 2);
    kctl_.access.users["bob"] = Revoked({}, 0);
  }

  KctlTestRunner kctl_;
};

// Validates token create: the request built from the flags, and the token, fingerprint, expiry,
// uses and the agent command line with the address kctl used.
TEST_F(AccessCommandsTest, TokenCreate) {
  EXPECT_EQ(kctl_.Run({"token", "create", "-l", "pool=lab", "--labels", "role=mail", "--ttl", "1h",
                       "--uses", "3", "--name", "mail"}),
            0)
      << kctl_.err();
  EXPECT_EQ(kctl_.out(),
            absl::StrCat("Token:          kft_abc\n"
                         "CA fingerprint: sha256:00ff\n"
                         "Expires:        2024-05-01 13:03:04 (in 1h)\n"
                         "Uses:           3\n"
                         "Labels:         pool=lab,role=mail\n"
                         "Host name:      mail\n"
                         "\n"
                         "The controller keeps only a hash of the token: it is shown this once. "
                         "Start an agent with it:\n"
                         "  kfleet-agent --controller ",
                         kctl_.address(),
                         " --token kft_abc --ca-fingerprint sha256:00ff --name mail --labels "
                         "pool=lab,role=mail\n"));
  EXPECT_EQ(kctl_.err(), "");
  v1::CreateTokenRequest request = kctl_.access.last_token();
  EXPECT_THAT(request.labels(), UnorderedElementsAre(Pair("pool", "lab"), Pair("role", "mail")));
  EXPECT_EQ(request.ttl(), "1h");
  EXPECT_EQ(request.uses(), 3u);
  EXPECT_EQ(request.name(), "mail");

  // Without flags the controller's defaults apply: nothing is sent for them.
  EXPECT_EQ(kctl_.Run({"token", "create"}), 0);
  request = kctl_.access.last_token();
  EXPECT_TRUE(request.labels().empty());
  EXPECT_EQ(request.ttl(), "");
  EXPECT_EQ(request.uses(), 0u);
}

// Validates token create -o json: one document with the response's fields and the agent command.
TEST_F(AccessCommandsTest, TokenCreateJson) {
  ASSERT_EQ(kctl_.Run({"token", "create", "-o", "json"}), 0);
  nlohmann::json doc = nlohmann::json::parse(kctl_.out(), nullptr, false);
  ASSERT_TRUE(doc.is_object()) << kctl_.out();
  EXPECT_EQ(doc["token"], "kft_abc");
  EXPECT_EQ(doc["ca_fingerprint"], "sha256:00ff");
  EXPECT_EQ(doc["uses"], 3);
  EXPECT_EQ(doc["labels"]["pool"], "lab");
  EXPECT_EQ(doc["agent_command"],
            absl::StrCat("kfleet-agent --controller ", kctl_.address(),
                         " --token kft_abc --ca-fingerprint sha256:00ff --labels "
                         "pool=lab,role=mail"));
  EXPECT_FALSE(doc.contains("name"));
}

// Validates that bad token flags and subcommands are refused before the controller is asked.
TEST_F(AccessCommandsTest, TokenUsageErrors) {
  EXPECT_EQ(kctl_.Run({"token", "create", "--uses", "0"}), 2);
  EXPECT_EQ(kctl_.err(), "kctl: token create: --uses: \"0\" is not a number from 1 to 10000\n");
  EXPECT_EQ(kctl_.Run({"token", "create", "--ttl", "5x"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: token create: --ttl: invalid duration \"5x\""));
  EXPECT_EQ(kctl_.Run({"token", "create", "-l", "pool"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: token create: -l: \"pool\" is not KEY=VALUE"));
  EXPECT_EQ(kctl_.Run({"token", "craete"}), 2);
  EXPECT_EQ(kctl_.err(),
            "kctl: token: unknown subcommand \"craete\" (did you mean \"create\"?); kctl token "
            "create makes an enrolment token\n");
  EXPECT_EQ(kctl_.Run({"token"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: token: missing the subcommand: kctl token create"));
  EXPECT_THAT(kctl_.access.calls(), IsEmpty());
}

// Validates the audit table: oldest first and newest last whatever order the controller sent,
// the times in the local zone, --since and --limit sent, PEER in wide output.
TEST_F(AccessCommandsTest, Audit) {
  EXPECT_EQ(kctl_.Run({"audit", "--since", "1h", "--limit", "50"}), 0) << kctl_.err();
  EXPECT_EQ(kctl_.out(),
            "TIME                  WHO     ROLE       METHOD                     TARGET   RESULT\n"
            "2024-05-01 11:43:04   admin   admin      AccessService/CreateUser   alice    OK\n"
            "2024-05-01 11:53:04   alice   operator   FleetService/SubmitJob     j-1      OK\n"
            "2024-05-01 11:58:04   bob     viewer     FleetService/CancelJob     j-1      "
            "PERMISSION_DENIED: role viewer may not cancel jobs\n");
  v1::ListAuditRequest request = kctl_.access.last_audit();
  EXPECT_EQ(request.since_unix_ms(), At(-absl::Hours(1)));
  EXPECT_EQ(request.limit(), 50u);

  EXPECT_EQ(kctl_.Run({"audit", "-o", "wide"}), 0);
  EXPECT_THAT(kctl_.out(), StartsWith("TIME                  WHO     ROLE       METHOD           "
                                      "          TARGET   PEER             RESULT\n"
                                      "2024-05-01 11:43:04   admin   admin      "
                                      "AccessService/CreateUser   alice    127.0.0.1:4444   OK\n"));
  request = kctl_.access.last_audit();
  EXPECT_EQ(request.since_unix_ms(), 0);
  EXPECT_EQ(request.limit(), 0u);
}

// Validates audit -o json: one document, entries oldest first.
TEST_F(AccessCommandsTest, AuditJson) {
  ASSERT_EQ(kctl_.Run({"audit", "-o", "json"}), 0);
  v1::ListAuditResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(kctl_.out(), &parsed).ok());
  ASSERT_EQ(parsed.entries_size(), 3);
  EXPECT_EQ(parsed.entries(0).who(), "admin");
  EXPECT_EQ(parsed.entries(2).who(), "bob");
  EXPECT_THAT(kctl_.out(), HasSubstr("\"time_unix_ms\""));
}

// Validates an empty audit log and bad flags.
TEST_F(AccessCommandsTest, AuditEmptyAndErrors) {
  kctl_.access.audit.clear_entries();
  EXPECT_EQ(kctl_.Run({"audit", "--since", "2h"}), 0);
  EXPECT_EQ(kctl_.out(), "");
  EXPECT_EQ(kctl_.err(), "No audit entries in the last 2h.\n");
  EXPECT_EQ(kctl_.Run({"audit", "--limit", "10001"}), 2);
  EXPECT_EQ(kctl_.err(), "kctl: audit: --limit: \"10001\" is not a number from 1 to 10000\n");
  EXPECT_EQ(kctl_.Run({"audit", "--since", "yesterday"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: audit: --since: invalid duration \"yesterday\""));
  EXPECT_THAT(kctl_.access.calls(), ElementsAre("ListAudit"));
}

// Validates whoami as a table and as JSON.
TEST_F(AccessCommandsTest, WhoAmI) {
  EXPECT_EQ(kctl_.Run({"whoami"}), 0);
  EXPECT_EQ(kctl_.out(),
            "KIND   NAME    ROLE       SERIAL             EXPIRES\n"
            "user   alice   operator   3f2a9c01d4e5b677   2025-05-01 12:03:04\n");
  EXPECT_EQ(kctl_.Run({"whoami", "-o", "json"}), 0);
  v1::Identity parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(kctl_.out(), &parsed).ok());
  EXPECT_EQ(parsed.name(), "alice");
  EXPECT_EQ(parsed.serial(), "3f2a9c01d4e5b677");

  // A plaintext caller has no certificate: its cells read "-".
  kctl_.access.identity = v1::Identity();
  kctl_.access.identity.set_kind("insecure");
  kctl_.access.identity.set_name("insecure");
  EXPECT_EQ(kctl_.Run({"whoami"}), 0);
  EXPECT_EQ(kctl_.out(),
            "KIND       NAME       ROLE   SERIAL   EXPIRES\n"
            "insecure   insecure   -      -        -\n");
}

// Validates hosts revoke: the serials and the sessions ended, JSON, an unknown host (exit 8);
// and that plain `kctl hosts` still lists hosts.
TEST_F(AccessCommandsTest, HostsRevoke) {
  EXPECT_EQ(kctl_.Run({"hosts", "revoke", "guest-1"}), 0) << kctl_.err();
  EXPECT_EQ(kctl_.out(), "revoked host guest-1: 1 certificate (serial ab12); 1 session ended\n");
  EXPECT_EQ(kctl_.Run({"hosts", "revoke", "guest-1", "-o", "json"}), 0);
  v1::RevokeResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(kctl_.out(), &parsed).ok());
  EXPECT_THAT(parsed.serials(), ElementsAre("ab12"));
  EXPECT_EQ(parsed.sessions_ended(), 1u);

  EXPECT_EQ(kctl_.Run({"hosts", "revoke", "guest-9"}), 8);
  EXPECT_EQ(kctl_.err(), "kctl: RevokeHost: no host \"guest-9\"\n");

  kctl_.service.hosts.add_hosts()->set_name("guest-1");
  EXPECT_EQ(kctl_.Run({"hosts"}), 0);
  EXPECT_THAT(kctl_.out(), StartsWith("NAME      STATE"));
  EXPECT_THAT(kctl_.service.calls(), ElementsAre("ListHosts"));
  EXPECT_THAT(kctl_.access.calls(),
              ElementsAre("RevokeHost guest-1", "RevokeHost guest-1", "RevokeHost guest-9"));
}

// Validates how `hosts` takes its arguments: a typo of revoke, revoke without a name, too many.
TEST_F(AccessCommandsTest, HostsArguments) {
  EXPECT_EQ(kctl_.Run({"hosts", "revok", "guest-1"}), 2);
  EXPECT_EQ(kctl_.err(),
            "kctl: hosts: unexpected argument \"revok\" (did you mean \"revoke\"?): kctl hosts "
            "lists the hosts; kctl hosts revoke NAME revokes one's certificates\n");
  EXPECT_EQ(kctl_.Run({"hosts", "revoke"}), 2);
  EXPECT_EQ(kctl_.err(),
            "kctl: hosts revoke: missing NAME, the host's name or id; kctl hosts lists them\n");
  EXPECT_EQ(kctl_.Run({"hosts", "revoke", "a", "b"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: hosts: unexpected argument \"b\""));
  EXPECT_THAT(kctl_.access.calls(), IsEmpty());
  EXPECT_THAT(kctl_.service.calls(), IsEmpty());
}

// Validates user revoke: several certificates, none left, an unknown user, create's flags.
TEST_F(AccessCommandsTest, UserRevoke) {
  EXPECT_EQ(kctl_.Run({"user", "revoke", "alice"}), 0);
  EXPECT_EQ(kctl_.out(),
            "revoked user alice: 2 certificates (serials 3f2a, 9c01); 2 sessions ended\n");
  EXPECT_EQ(kctl_.Run({"user", "revoke", "bob"}), 0);
  EXPECT_EQ(kctl_.out(), "revoked user bob: no certificate was still valid; 0 sessions ended\n");
  EXPECT_EQ(kctl_.Run({"user", "revoke", "carol"}), 8);
  EXPECT_EQ(kctl_.err(), "kctl: RevokeUser: no user \"carol\"\n");
  EXPECT_EQ(kctl_.Run({"user", "revoke", "alice", "--role", "admin"}), 2);
  EXPECT_EQ(kctl_.err(),
            "kctl: user revoke: --role is for kctl user create; revoke takes a NAME\n");
  EXPECT_EQ(kctl_.Run({"user", "remove", "alice"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: user: unknown subcommand \"remove\" (did you mean "));
  EXPECT_THAT(kctl_.access.calls(),
              ElementsAre("RevokeUser alice", "RevokeUser bob", "RevokeUser carol"));
}

// Validates that a refusal by the controller exits 9 and says why, for each new command.
TEST_F(AccessCommandsTest, Refused) {
  kctl_.access.error = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "role viewer");
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"token", "create"},
                                             {"audit"},
                                             {"user", "revoke", "alice"},
                                             {"hosts", "revoke", "guest-1"}}) {
    EXPECT_EQ(kctl_.Run(args), 9) << args[0];
    EXPECT_THAT(kctl_.err(), HasSubstr("(role viewer): the role of this certificate does not "
                                       "allow it; kctl whoami shows who the controller takes "
                                       "kctl for\n"));
  }
  kctl_.access.error = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no certificate");
  EXPECT_EQ(kctl_.Run({"whoami"}), 9);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: WhoAmI: the controller at "));
}

// Validates that a token's expiry reads to the nearest minute: a token of 2h made a moment ago
// expires "in 2h", not "in 1h".
TEST(AccessViewTest, ExpiryRounds) {
  absl::Time now = KctlTestRunner::Start();
  v1::CreateTokenResponse token;
  token.set_expires_unix_ms(absl::ToUnixMillis(now + absl::Hours(2) - absl::Milliseconds(5)));
  EXPECT_THAT(RenderToken(token, "", "x", now, absl::UTCTimeZone()),
              HasSubstr("Expires:        2024-05-01 14:03:03 (in 2h)\n"));
  token.set_expires_unix_ms(absl::ToUnixMillis(now + absl::Minutes(90)));
  EXPECT_THAT(RenderToken(token, "", "x", now, absl::UTCTimeZone()), HasSubstr("(in 1h30m)"));
  token.set_expires_unix_ms(absl::ToUnixMillis(now + absl::Hours(24 * 30)));
  EXPECT_THAT(RenderToken(token, "", "x", now, absl::UTCTimeZone()), HasSubstr("(in 30d)"));
  token.set_expires_unix_ms(absl::ToUnixMillis(now - absl::Minutes(3)));
  EXPECT_THAT(RenderToken(token, "", "x", now, absl::UTCTimeZone()), HasSubstr("(3m ago)"));
}

// Validates the shell quoting of the agent command line.
TEST(AccessViewTest, ShellQuote) {
  EXPECT_EQ(ShellQuote("pool=lab,role=mail"), "pool=lab,role=mail");
  EXPECT_EQ(ShellQuote("[::1]:7400"), "'[::1]:7400'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote(""), "''");
}

}  // namespace
}  // namespace kfleet::cli

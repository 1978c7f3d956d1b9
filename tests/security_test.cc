// Mutual TLS, enrolment, roles, revocation and audit against a real controller serving TLS on a
// loopback port in this process. Each case is one row of the refusal table in docs/security.md:
// the caller gets a clear refusal, the controller logs or audits it and goes on serving.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/credentials.h"
#include "common/files.h"
#include "common/pki.h"
#include "controller/controller.h"
#include "controller/fleet/agent_service.h"
#include "kfleet/v1/agent.grpc.pb.h"
#include "kfleet/v1/artifacts.grpc.pb.h"
#include "kfleet/v1/fleet.grpc.pb.h"
#include "kfleet/v1/security.grpc.pb.h"

namespace kfleet::controller {
namespace {

constexpr std::chrono::seconds kRpcTimeout(10);

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + kRpcTimeout;
}

// A key and the certificate that goes with it.
struct Credentials {
  std::string key;
  std::string cert;
};

v1::AgentMessage Hello(const std::string& host_id) {
  v1::AgentMessage m;
  m.mutable_hello()->set_host_id(host_id);
  m.mutable_hello()->set_boot_id("boot-1");
  m.mutable_hello()->mutable_protocol()->set_major(kProtocolMajor);
  m.mutable_hello()->mutable_protocol()->set_minor(kProtocolMinor);
  return m;
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/kfleet-security-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    state_dir_ = dir;
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.state_dir = state_dir_;
    absl::StatusOr<std::unique_ptr<Controller>> c = Controller::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(*c);
    address_ = "127.0.0.1:" + std::to_string(controller_->port());
    ca_pem_ = Read("pki/ca.crt");
    ca_key_ = Read("pki/ca.key");
    admin_ = {Read("pki/admin.key"), Read("pki/admin.crt")};
  }

  void TearDown() override {
    controller_.reset();
    if (!state_dir_.empty()) std::filesystem::remove_all(state_dir_);
  }

  std::string Read(const std::string& relative) {
    absl::StatusOr<std::string> s = ReadFile(state_dir_ + "/" + relative);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.value_or("");
  }

  // A channel presenting `who` (none if empty) and trusting `ca` (the controller's by default).
  std::shared_ptr<grpc::Channel> Channel(const Credentials& who, std::string ca = "") {
    TransportSecurity s;
    s.ca_pem = ca.empty() ? ca_pem_ : ca;
    s.cert_pem = who.cert;
    s.key_pem = who.key;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = MakeChannel(s, address_);
    EXPECT_TRUE(ch.ok()) << ch.status();
    return *ch;
  }

  grpc::Status ListHosts(const Credentials& who, std::string ca = "") {
    auto stub = v1::FleetService::NewStub(Channel(who, ca));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::ListHostsResponse resp;
    return stub->ListHosts(&ctx, v1::ListHostsRequest(), &resp);
  }

  // A certificate signed with `ca_key`/`ca_cert` directly (bypassing the controller's records).
  Credentials Issue(const std::string& ca_cert, const std::string& ca_key, const std::string& cn,
                    const std::string& role, absl::Time not_before, absl::Time not_after) {
    Credentials c;
    c.key = pki::GenerateKeyPem().value();
    pki::IssueOptions o;
    o.subject = {cn, role};
    o.not_before = not_before;
    o.not_after = not_after;
    c.cert = pki::IssueCertificate(ca_cert, ca_key, pki::PublicKeyPem(c.key).value(), o).value();
    return c;
  }

  absl::StatusOr<v1::CreateTokenResponse> CreateToken(v1::CreateTokenRequest req) {
    auto stub = v1::AccessService::NewStub(Channel(admin_));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::CreateTokenResponse resp;
    grpc::Status s = stub->CreateToken(&ctx, req, &resp);
    if (!s.ok())
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    return resp;
  }

  std::string Token(int uses = 1, const std::string& ttl = "", const std::string& host_id = "",
                    std::map<std::string, std::string> labels = {}) {
    v1::CreateTokenRequest req;
    req.set_uses(uses);
    req.set_ttl(ttl);
    req.set_host_id(host_id);
    for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
    absl::StatusOr<v1::CreateTokenResponse> t = CreateToken(req);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->token() : "";
  }

  // Enrols with a fresh key; the subject's CN is `host_id`, its OU `ou`.
  grpc::Status Enrol(const std::string& token, const std::string& host_id, Credentials* out,
                     std::map<std::string, std::string> labels = {}, const std::string& ou = "") {
    Credentials c;
    c.key = pki::GenerateKeyPem().value();
    v1::EnrolRequest req;
    req.set_token(token);
    req.set_csr_pem(pki::MakeCsr(c.key, {host_id, ou}).value());
    req.set_name(host_id);
    for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
    auto stub = v1::EnrolService::NewStub(Channel({}));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::EnrolResponse resp;
    grpc::Status s = stub->Enrol(&ctx, req, &resp);
    c.cert = resp.certificate_pem();
    if (out != nullptr) *out = c;
    return s;
  }

  Credentials Agent(const std::string& host_id) {
    Credentials c;
    grpc::Status s = Enrol(Token(), host_id, &c);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return c;
  }

  Credentials User(const std::string& name, const std::string& role) {
    Credentials c;
    c.key = pki::GenerateKeyPem().value();
    v1::CreateUserRequest req;
    req.set_name(name);
    req.set_role(role);
    req.set_csr_pem(pki::MakeCsr(c.key, {name, role}).value());
    auto stub = v1::AccessService::NewStub(Channel(admin_));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::CreateUserResponse resp;
    grpc::Status s = stub->CreateUser(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    c.cert = resp.certificate_pem();
    return c;
  }

  std::vector<v1::AuditEntry> Audit() {
    auto stub = v1::AccessService::NewStub(Channel(admin_));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::ListAuditResponse resp;
    grpc::Status s = stub->ListAudit(&ctx, v1::ListAuditRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.entries().begin(), resp.entries().end()};
  }

  bool Audited(const std::string& method, const std::string& result_part) {
    for (const v1::AuditEntry& e : Audit()) {
      if (e.method() == method && absl::StrContains(e.result(), result_part)) return true;
    }
    return false;
  }

  // The controller still serves its admin.
  void ExpectStillServing() {
    grpc::Status s = ListHosts(admin_);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  std::string state_dir_;
  std::unique_ptr<Controller> controller_;
  std::string address_;
  std::string ca_pem_;
  std::string ca_key_;
  Credentials admin_;
};

// Validates that the first start wrote the PKI with private files and a kctl.yaml that names it.
TEST_F(SecurityTest, FirstStartMakesPrivatePki) {
  for (const char* f : {"pki/ca.key", "pki/ca.crt", "pki/server.key", "pki/server.crt",
                        "pki/admin.key", "pki/admin.crt", "kctl.yaml"}) {
    auto perms = std::filesystem::status(state_dir_ + "/" + f).permissions();
    EXPECT_EQ(perms & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << f;
  }
  std::string yaml = Read("kctl.yaml");
  EXPECT_TRUE(absl::StrContains(yaml, "controller: " + address_)) << yaml;
  EXPECT_TRUE(absl::StrContains(yaml, "cert: pki/admin.crt")) << yaml;
  pki::CertInfo server = pki::ParseCertificate(Read("pki/server.crt")).value();
  EXPECT_TRUE(std::find(server.ip_addresses.begin(), server.ip_addresses.end(), "127.0.0.1") !=
              server.ip_addresses.end());
  EXPECT_EQ(controller_->ca_fingerprint(), pki::Fingerprint(ca_pem_).value());
  ExpectStillServing();
}

// Validates that the admin API refuses a caller without a client certificate, saying how to get
// one.
TEST_F(SecurityTest, NoClientCertificateIsRefused) {
  grpc::Status s = ListHosts({});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "no client certificate")) << s.error_message();
  EXPECT_TRUE(Audited("FleetService/ListHosts", "UNAUTHENTICATED"));
}

// Validates that a certificate from another CA fails the handshake, and the controller goes on.
TEST_F(SecurityTest, CertificateFromAnotherCaIsRefused) {
  std::string other_key = pki::GenerateKeyPem().value();
  absl::Time now = absl::Now();
  std::string other_ca = pki::MakeCaCertificate(other_key, {"other CA", "ca"}, now - absl::Hours(1),
                                                now + absl::Hours(1))
                             .value();
  Credentials forged =
      Issue(other_ca, other_key, "admin", "admin", now - absl::Hours(1), now + absl::Hours(1));
  grpc::Status s = ListHosts(forged);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  ExpectStillServing();
}

// Validates that an expired certificate of the right CA fails the handshake.
TEST_F(SecurityTest, ExpiredCertificateIsRefused) {
  absl::Time now = absl::Now();
  Credentials expired =
      Issue(ca_pem_, ca_key_, "old-admin", "admin", now - absl::Hours(48), now - absl::Hours(24));
  grpc::Status s = ListHosts(expired);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  ExpectStillServing();
}

// Validates that a revoked user is refused at once: new connections at the handshake, calls on
// a connection opened before the revocation by the per-call check.
TEST_F(SecurityTest, RevokedUserIsRefused) {
  Credentials alice = User("alice", "viewer");
  auto before = v1::FleetService::NewStub(Channel(alice));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::ListHostsResponse resp;
    grpc::Status s = before->ListHosts(&ctx, v1::ListHostsRequest(), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  {
    auto stub = v1::AccessService::NewStub(Channel(admin_));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::RevokeRequest req;
    req.set_name("alice");
    v1::RevokeResponse resp;
    grpc::Status s = stub->RevokeUser(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.serials_size(), 1);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  v1::ListHostsResponse resp;
  grpc::Status s = before->ListHosts(&ctx, v1::ListHostsRequest(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "revoked")) << s.error_message();
  grpc::Status fresh = ListHosts(alice);
  EXPECT_EQ(fresh.error_code(), grpc::StatusCode::UNAVAILABLE) << fresh.error_message();
  EXPECT_TRUE(Audited("AccessService/RevokeUser", "OK"));
  ExpectStillServing();
}

// Validates that a revoked user's open watch stream ends at once.
TEST_F(SecurityTest, RevokedUserStreamEnds) {
  Credentials viewer = User("wanda", "viewer");
  auto admin = v1::FleetService::NewStub(Channel(admin_));
  v1::SubmitJobRequest submit;
  submit.mutable_spec()->set_name("waits");
  submit.mutable_spec()->mutable_hosts()->mutable_labels()->insert({"pool", "nowhere"});
  submit.mutable_spec()->mutable_hosts()->set_count(1);
  submit.mutable_spec()->add_steps()->mutable_exec()->add_argv("true");
  v1::Job job;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    ASSERT_TRUE(admin->SubmitJob(&ctx, submit, &job).ok());
  }
  auto watcher = v1::FleetService::NewStub(Channel(viewer));
  grpc::ClientContext wctx;
  wctx.set_deadline(Deadline());
  v1::GetJobRequest get;
  get.set_id(job.id());
  auto stream = watcher->WatchJob(&wctx, get);
  v1::Job seen;
  ASSERT_TRUE(stream->Read(&seen));
  {
    auto access = v1::AccessService::NewStub(Channel(admin_));
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::RevokeRequest req;
    req.set_name("wanda");
    v1::RevokeResponse resp;
    ASSERT_TRUE(access->RevokeUser(&ctx, req, &resp).ok());
  }
  // Nothing about the job changes: the revocation alone ends the stream.
  while (stream->Read(&seen)) {
  }
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
}

// Validates that an agent's certificate cannot call the admin API.
TEST_F(SecurityTest, AgentCertificateCannotCallAdminApi) {
  Credentials agent = Agent("h-agent-1");
  grpc::Status s = ListHosts(agent);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "agent certificates")) << s.error_message();
}

// Validates that a viewer may read but not run anything, and that the refusal is audited.
TEST_F(SecurityTest, ViewerCannotExec) {
  Credentials viewer = User("vera", "viewer");
  EXPECT_TRUE(ListHosts(viewer).ok());
  auto stub = v1::FleetService::NewStub(Channel(viewer));
  v1::SubmitJobRequest req;
  req.mutable_spec()->set_name("viewer-exec");
  req.mutable_spec()->mutable_hosts()->set_all(true);
  req.mutable_spec()->add_steps()->mutable_exec()->add_argv("true");
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  v1::Job job;
  grpc::Status s = stub->SubmitJob(&ctx, req, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "operator or admin")) << s.error_message();
  bool found = false;
  for (const v1::AuditEntry& e : Audit()) {
    if (e.method() == "FleetService/SubmitJob" && e.who() == "vera" && e.role() == "viewer") {
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

// Validates that an operator may submit a job (what a viewer may not) and it is audited as theirs.
TEST_F(SecurityTest, OperatorMayExecAndIsAudited) {
  Credentials op = User("otto", "operator");
  auto stub = v1::FleetService::NewStub(Channel(op));
  v1::SubmitJobRequest req;
  req.mutable_spec()->set_name("operator-exec");
  req.mutable_spec()->mutable_hosts()->mutable_labels()->insert({"pool", "nowhere"});
  req.mutable_spec()->mutable_hosts()->set_count(1);
  req.mutable_spec()->add_steps()->mutable_exec()->add_argv("true");
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  v1::Job job;
  grpc::Status s = stub->SubmitJob(&ctx, req, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job.submitter(), "user:otto");
  bool found = false;
  for (const v1::AuditEntry& e : Audit()) {
    if (e.method() == "FleetService/SubmitJob" && e.who() == "otto" && e.result() == "OK") {
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

// Validates that a Hello naming another host than the certificate's is refused.
TEST_F(SecurityTest, HelloWithAnotherHostIdIsRefused) {
  Credentials agent = Agent("h-agent-2");
  auto stub = v1::AgentService::NewStub(Channel(agent));
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  auto stream = stub->Session(&ctx);
  v1::AgentMessage hello = Hello("h-someone-else");
  ASSERT_TRUE(stream->Write(hello));
  v1::ControllerMessage m;
  while (stream->Read(&m)) {
    EXPECT_FALSE(m.has_welcome()) << m.ShortDebugString();
  }
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "h-agent-2")) << s.error_message();
  EXPECT_TRUE(Audited("AgentService/Session", "PERMISSION_DENIED"));
}

// Validates that the session of an enrolled agent registers under the name and labels it enrolled
// with, whatever its Hello says.
TEST_F(SecurityTest, SessionTakesNameAndLabelsFromEnrolment) {
  Credentials agent;
  ASSERT_TRUE(
      Enrol(Token(1, "", "", {{"pool", "lab"}}), "h-agent-3", &agent, {{"pool", "lab"}}).ok());
  auto stub = v1::AgentService::NewStub(Channel(agent));
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  auto stream = stub->Session(&ctx);
  v1::AgentMessage hello = Hello("h-agent-3");
  hello.mutable_hello()->set_name("pretender");
  (*hello.mutable_hello()->mutable_labels())["role"] = "builder";
  ASSERT_TRUE(stream->Write(hello));
  v1::ControllerMessage m;
  ASSERT_TRUE(stream->Read(&m));
  ASSERT_TRUE(m.has_welcome()) << m.ShortDebugString();
  EXPECT_EQ(m.welcome().host_name(), "h-agent-3");
  auto fleet = v1::FleetService::NewStub(Channel(admin_));
  grpc::ClientContext c2;
  c2.set_deadline(Deadline());
  v1::GetHostRequest req;
  req.set_name_or_id("h-agent-3");
  v1::Host host;
  ASSERT_TRUE(fleet->GetHost(&c2, req, &host).ok());
  EXPECT_EQ(host.labels().count("role"), 0u);
  EXPECT_EQ(host.labels().at("pool"), "lab");
  ctx.TryCancel();
}

// Validates that revoking a host ends its session at once and refuses its next handshake.
TEST_F(SecurityTest, RevokedHostSessionEnds) {
  Credentials agent = Agent("h-agent-4");
  auto stub = v1::AgentService::NewStub(Channel(agent));
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  auto stream = stub->Session(&ctx);
  v1::AgentMessage hello = Hello("h-agent-4");
  ASSERT_TRUE(stream->Write(hello));
  v1::ControllerMessage m;
  ASSERT_TRUE(stream->Read(&m));
  ASSERT_TRUE(m.has_welcome());
  auto access = v1::AccessService::NewStub(Channel(admin_));
  grpc::ClientContext c2;
  c2.set_deadline(Deadline());
  v1::RevokeRequest req;
  req.set_name("h-agent-4");
  v1::RevokeResponse resp;
  ASSERT_TRUE(access->RevokeHost(&c2, req, &resp).ok());
  EXPECT_EQ(resp.sessions_ended(), 1u);
  while (stream->Read(&m)) {
  }
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  auto again = v1::AgentService::NewStub(Channel(agent));
  grpc::ClientContext c3;
  c3.set_deadline(Deadline());
  auto stream2 = again->Session(&c3);
  stream2->Write(hello);
  while (stream2->Read(&m)) {
  }
  EXPECT_FALSE(stream2->Finish().ok());
}

// Validates that a one-use token cannot be used twice.
TEST_F(SecurityTest, TokenUsedTwiceIsRefused) {
  std::string token = Token(1);
  ASSERT_TRUE(Enrol(token, "h-first", nullptr).ok());
  grpc::Status s = Enrol(token, "h-second", nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "already used")) << s.error_message();
  EXPECT_TRUE(Audited("EnrolService/Enrol", "already used"));
}

// Validates that an expired token is refused.
TEST_F(SecurityTest, ExpiredTokenIsRefused) {
  std::string token = Token(1, "1s");
  absl::SleepFor(absl::Milliseconds(1200));
  grpc::Status s = Enrol(token, "h-late", nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "expired")) << s.error_message();
}

// Validates that a made-up token is refused.
TEST_F(SecurityTest, MadeUpTokenIsRefused) {
  grpc::Status s = Enrol("kft1-0123456789abcdef0123456789abcdef0123456789abcdef", "h-x", nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "not known")) << s.error_message();
  ExpectStillServing();
}

// Validates that a CSR cannot claim another host's id, other labels than the token grants, or a
// role, and that none of these spends the token.
TEST_F(SecurityTest, ForgedCsrIsRefused) {
  std::string bound = Token(1, "", "h-bound");
  grpc::Status s = Enrol(bound, "h-other", nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();

  Agent("h-taken");
  s = Enrol(Token(), "h-taken", nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "already enrolled")) << s.error_message();

  std::string labelled = Token(1, "", "", {{"pool", "a"}});
  s = Enrol(labelled, "h-labels", nullptr, {{"role", "builder"}});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "role=builder")) << s.error_message();

  s = Enrol(labelled, "h-admin", nullptr, {}, "admin");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();

  // None of the refusals spent the token.
  EXPECT_TRUE(Enrol(labelled, "h-labels", nullptr, {{"pool", "a"}}).ok());
}

// Validates that an agent may not download a blob none of its commands names.
TEST_F(SecurityTest, AgentFetchesOnlyWhatItsCommandsName) {
  Credentials agent = Agent("h-agent-5");
  auto stub = v1::ArtifactService::NewStub(Channel(agent));
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  v1::DownloadRequest req;
  req.set_sha256(std::string(64, 'a'));
  auto reader = stub->Download(&ctx, req);
  v1::DownloadChunk chunk;
  while (reader->Read(&chunk)) {
  }
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
}

// Validates that plaintext to the TLS port and a garbage or truncated handshake are refused
// without harming the controller.
TEST_F(SecurityTest, PlaintextAndGarbageAreRefused) {
  {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> ch =
        MakeChannel(TransportSecurity{/*insecure=*/true}, address_);
    ASSERT_TRUE(ch.ok());
    auto stub = v1::FleetService::NewStub(*ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    v1::ListHostsResponse resp;
    grpc::Status s = stub->ListHosts(&ctx, v1::ListHostsRequest(), &resp);
    EXPECT_FALSE(s.ok());
  }
  for (std::string bytes : {std::string("GET / HTTP/1.1\r\n\r\n"),
                            std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
                            std::string(4096, '\xff')}) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(controller_->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    close(fd);
  }
  ExpectStillServing();
}

// Validates that a controller started with its own PKI (--tls-cert/--tls-key/--tls-ca, no CA key)
// serves users of that CA and refuses to make tokens it could not honour.
TEST(BroughtOwnPkiTest, ServesTheGivenCaAndCannotEnrol) {
  char dir[] = "/tmp/kfleet-own-pki-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string d = dir;
  absl::Time now = absl::Now();
  std::string ca_key = pki::GenerateKeyPem().value();
  std::string ca =
      pki::MakeCaCertificate(ca_key, {"lab CA", "ca"}, now - absl::Hours(1), now + absl::Hours(24))
          .value();
  auto issue = [&](const std::string& cn, const std::string& ou, bool server, Credentials* out) {
    out->key = pki::GenerateKeyPem().value();
    pki::IssueOptions o;
    o.subject = {cn, ou};
    o.not_before = now - absl::Hours(1);
    o.not_after = now + absl::Hours(24);
    o.server = server;
    o.client = !server;
    if (server) o.ip_addresses = {"127.0.0.1"};
    out->cert = pki::IssueCertificate(ca, ca_key, pki::PublicKeyPem(out->key).value(), o).value();
  };
  Credentials server, admin;
  issue("ctl", "controller", true, &server);
  issue("root", "admin", false, &admin);
  ASSERT_TRUE(WriteFileAtomic(d + "/server.crt", server.cert).ok());
  ASSERT_TRUE(WriteFileAtomic(d + "/server.key", server.key).ok());
  ASSERT_TRUE(WriteFileAtomic(d + "/ca.crt", ca).ok());
  ControllerOptions options;
  options.listen = "127.0.0.1:0";
  options.state_dir = d + "/state";
  options.tls_cert = d + "/server.crt";
  options.tls_key = d + "/server.key";
  options.tls_ca = d + "/ca.crt";
  absl::StatusOr<std::unique_ptr<Controller>> c = Controller::Start(options);
  ASSERT_TRUE(c.ok()) << c.status();
  TransportSecurity s;
  s.ca_pem = ca;
  s.cert_pem = admin.cert;
  s.key_pem = admin.key;
  std::shared_ptr<grpc::Channel> ch =
      MakeChannel(s, "127.0.0.1:" + std::to_string((*c)->port())).value();
  {
    auto fleet = v1::FleetService::NewStub(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::ListHostsResponse resp;
    grpc::Status st = fleet->ListHosts(&ctx, v1::ListHostsRequest(), &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  {
    auto access = v1::AccessService::NewStub(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::CreateTokenResponse resp;
    grpc::Status st = access->CreateToken(&ctx, v1::CreateTokenRequest(), &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
    EXPECT_TRUE(absl::StrContains(st.error_message(), "--tls-ca-key")) << st.error_message();
  }
  c->reset();
  std::filesystem::remove_all(d);
}

// Validates that refusing plaintext off loopback names the fix.
TEST(SecurityFlagsTest, PlaintextOffLoopbackIsRefused) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ch =
      MakeChannel(TransportSecurity{/*insecure=*/true}, "192.0.2.1:7400");
  ASSERT_FALSE(ch.ok());
  EXPECT_TRUE(absl::StrContains(ch.status().message(), "TLS")) << ch.status();
}

}  // namespace
}  // namespace kfleet::controller

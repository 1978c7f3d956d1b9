// What mutual TLS costs a kfleet client, against the named peer: the same thing with --insecure
// (plaintext on loopback). Two controllers run in this process, each on 127.0.0.1:0 with a
// temporary state dir of its own (removed at the end): one serving TLS with its own CA, one with
// `security.insecure`. Measured, wall time, --reps times each, TLS and plaintext alternating:
//
//   connect: a new channel (the admin certificate for TLS) and its first FleetService.ListHosts,
//     until it returns: TCP connect, TLS 1.3 handshake with client certificate, HTTP/2 setup and
//     the call. Each rep must open a connection of its own (checked in /proc/net/tcp).
//   warm call: ListHosts on a channel that is already connected; and, timed alone, the part of
//     it that is the TLS controller's own: parsing the caller's certificate at each call.
//   enrolment (TLS only, plaintext has none): what an agent's first start costs, GenerateKeyPem +
//     MakeCsr + EnrolService.Enrol on a fresh channel without client certificate; the token is
//     made beforehand on the admin channel, untimed. Printed against the connect figure.
//
//   ./build/bench/tls_handshake [--reps=50]
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/credentials.h"
#include "common/files.h"
#include "common/grpc_status.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "controller/controller.h"
#include "kfleet/v1/fleet.grpc.pb.h"
#include "kfleet/v1/security.grpc.pb.h"

namespace kfleet::controller {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kRpcTimeout(10);
// Calls made on each warm channel before its calls are timed.
constexpr int kWarmupCalls = 5;
// How long a closed channel's connection is given to go away before the next connect.
constexpr absl::Duration kCloseWait = absl::Seconds(2);

struct Options {
  int reps = 50;
};

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + kRpcTimeout;
}

// One controller of the run and what its clients present.
class Side {
 public:
  static absl::StatusOr<std::unique_ptr<Side>> Start(bool insecure) {
    char dir[] = "/tmp/kfleet-tls-bench-XXXXXX";
    if (mkdtemp(dir) == nullptr) return ErrnoStatus("mkdtemp /tmp/kfleet-tls-bench-XXXXXX", errno);
    auto side = std::unique_ptr<Side>(new Side(dir));
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.state_dir = side->state_dir_;
    options.security.insecure = insecure;
    ASSIGN_OR_RETURN(side->controller_, Controller::Start(options));
    side->port_ = side->controller_->port();
    side->address_ = absl::StrCat("127.0.0.1:", side->port_);
    side->admin_.insecure = insecure;
    side->agent_.insecure = insecure;
    if (!insecure) {
      ASSIGN_OR_RETURN(side->admin_.ca_pem, ReadFile(side->state_dir_ + "/pki/ca.crt"));
      ASSIGN_OR_RETURN(side->admin_.cert_pem, ReadFile(side->state_dir_ + "/pki/admin.crt"));
      ASSIGN_OR_RETURN(side->admin_.key_pem, ReadFile(side->state_dir_ + "/pki/admin.key"));
      side->agent_.ca_pem = side->admin_.ca_pem;
    }
    return side;
  }

  // The controller stops before its state dir goes.
  ~Side() {
    controller_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(state_dir_, ignored);
  }

  int port() const { return port_; }
  const std::string& address() const { return address_; }
  // The first admin's identity (TLS), or plaintext.
  const TransportSecurity& admin() const { return admin_; }
  // What an agent holds before it enrols: the CA only.
  const TransportSecurity& agent() const { return agent_; }

 private:
  explicit Side(std::string state_dir) : state_dir_(std::move(state_dir)) {}

  std::string state_dir_;
  std::unique_ptr<Controller> controller_;
  int port_ = 0;
  std::string address_;
  TransportSecurity admin_;
  TransportSecurity agent_;
};

// Local ports of this machine's established TCP connections to `server_port` (client ends).
// gRPC dials 127.0.0.1 from an IPv6 socket (v4-mapped), so both tables are read.
std::set<int> ClientPorts(int server_port) {
  std::set<int> ports;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream tcp(table);
    std::string line;
    std::getline(tcp, line);  // header
    while (std::getline(tcp, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      size_t lc = local.rfind(':');
      size_t rc = remote.rfind(':');
      int local_port = 0;
      int remote_port = 0;
      if (state != "01" || lc == std::string::npos || rc == std::string::npos ||
          !absl::SimpleHexAtoi(local.substr(lc + 1), &local_port) ||
          !absl::SimpleHexAtoi(remote.substr(rc + 1), &remote_port) || remote_port != server_port) {
        continue;
      }
      ports.insert(local_port);
    }
  }
  return ports;
}

// Tells whether each fresh channel really opened a connection of its own: gRPC shares
// connections between channels with equal settings, which would time a warm call instead.
class ConnectionCheck {
 public:
  explicit ConnectionCheck(int server_port) : server_port_(server_port) {}

  // Call before the channel is made: the connections open now are not its own.
  void Before() { before_ = ClientPorts(server_port_); }

  // Call while the channel is open: the port of its new connection, or FailedPrecondition.
  absl::StatusOr<int> NewPort() const {
    for (int port : ClientPorts(server_port_)) {
      if (before_.count(port) == 0) return port;
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "a fresh channel to port ", server_port_,
        " opened no connection of its own (it shared one): the connect figure would be a warm "
        "call"));
  }

  // Waits (bounded) until the connection on `port` is closed, so that the next connect neither
  // shares it nor runs beside its teardown.
  void AwaitClosed(int port) const {
    absl::Time deadline = absl::Now() + kCloseWait;
    while (ClientPorts(server_port_).count(port) != 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }

 private:
  int server_port_;
  std::set<int> before_;
};

absl::Status ListHosts(v1::FleetService::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  v1::ListHostsResponse resp;
  return ToAbslStatus(stub.ListHosts(&ctx, v1::ListHostsRequest(), &resp));
}

// A new channel and its first ListHosts, in ms.
absl::StatusOr<double> TimeConnect(const Side& side, ConnectionCheck& check) {
  int port = 0;
  double ms = 0;
  check.Before();
  {
    Clock::time_point start = Clock::now();
    ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                     MakeChannel(side.admin(), side.address()));
    auto stub = v1::FleetService::NewStub(channel);
    RETURN_IF_ERROR(ListHosts(*stub));
    ms = MsSince(start);
    ASSIGN_OR_RETURN(port, check.NewPort());
  }
  check.AwaitClosed(port);
  return ms;
}

absl::StatusOr<std::string> CreateToken(v1::AccessService::Stub& admin) {
  v1::CreateTokenRequest req;
  req.set_uses(1);
  req.set_ttl("10m");
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  v1::CreateTokenResponse resp;
  RETURN_IF_ERROR(ToAbslStatus(admin.CreateToken(&ctx, req, &resp)));
  return resp.token();
}

struct EnrolTimes {
  double total_ms = 0;
  double key_csr_ms = 0;  // the part spent making the key and the CSR
};

// An agent's first start: a key, a CSR, and Enrol on a fresh channel presenting no certificate.
absl::StatusOr<EnrolTimes> TimeEnrol(const Side& side, const std::string& token,
                                     const std::string& host_id, ConnectionCheck& check) {
  EnrolTimes times;
  int port = 0;
  check.Before();
  {
    Clock::time_point start = Clock::now();
    ASSIGN_OR_RETURN(std::string key, pki::GenerateKeyPem());
    ASSIGN_OR_RETURN(std::string csr, pki::MakeCsr(key, {host_id, ""}));
    times.key_csr_ms = MsSince(start);
    ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                     MakeChannel(side.agent(), side.address()));
    auto stub = v1::EnrolService::NewStub(channel);
    v1::EnrolRequest req;
    req.set_token(token);
    req.set_csr_pem(csr);
    req.set_name(host_id);
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline());
    v1::EnrolResponse resp;
    RETURN_IF_ERROR(ToAbslStatus(stub->Enrol(&ctx, req, &resp)));
    times.total_ms = MsSince(start);
    if (resp.certificate_pem().empty()) return absl::InternalError("Enrol returned no certificate");
    ASSIGN_OR_RETURN(port, check.NewPort());
  }
  check.AwaitClosed(port);
  return times;
}

struct Figure {
  double min = 0;
  double median = 0;
  double max = 0;
};

Figure Summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  size_t n = ms.size();
  double median = n % 2 == 1 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  return {ms.front(), median, ms.back()};
}

std::string Cell(const Figure& f) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%7.3f / %7.3f / %7.3f", f.min, f.median, f.max);
  return buf;
}

void Row(const char* name, const Figure& tls, const std::string& peer, double ratio) {
  printf("%-30s  %-27s  %-28s  x%.2f\n", name, Cell(tls).c_str(), peer.c_str(), ratio);
}

absl::Status Run(const Options& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Side> tls, Side::Start(/*insecure=*/false));
  ASSIGN_OR_RETURN(std::unique_ptr<Side> plain, Side::Start(/*insecure=*/true));
  ConnectionCheck tls_check(tls->port());
  ConnectionCheck plain_check(plain->port());

  // Connect first, while no other channel to either controller is open. One untimed connect
  // per side first: the process's first connection also pays one-time setup in gRPC and OpenSSL.
  RETURN_IF_ERROR(TimeConnect(*tls, tls_check).status());
  RETURN_IF_ERROR(TimeConnect(*plain, plain_check).status());
  std::vector<double> tls_connect, plain_connect;
  for (int i = 0; i < options.reps; ++i) {
    ASSIGN_OR_RETURN(double t, TimeConnect(*tls, tls_check));
    ASSIGN_OR_RETURN(double p, TimeConnect(*plain, plain_check));
    tls_connect.push_back(t);
    plain_connect.push_back(p);
  }

  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> tls_channel,
                   MakeChannel(tls->admin(), tls->address()));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> plain_channel,
                   MakeChannel(plain->admin(), plain->address()));
  auto tls_fleet = v1::FleetService::NewStub(tls_channel);
  auto plain_fleet = v1::FleetService::NewStub(plain_channel);
  for (int i = 0; i < kWarmupCalls; ++i) {
    RETURN_IF_ERROR(ListHosts(*tls_fleet));
    RETURN_IF_ERROR(ListHosts(*plain_fleet));
  }
  std::vector<double> tls_warm, plain_warm;
  for (int i = 0; i < options.reps; ++i) {
    Clock::time_point start = Clock::now();
    RETURN_IF_ERROR(ListHosts(*tls_fleet));
    tls_warm.push_back(MsSince(start));
    start = Clock::now();
    RETURN_IF_ERROR(ListHosts(*plain_fleet));
    plain_warm.push_back(MsSince(start));
  }

  // The TLS controller parses a caller's certificate once per connection and keeps it
  // (AccessControl::IdentityOf); this is that parse, timed alone:
  // that part of the warm call, timed alone.
  std::vector<double> parse;
  for (int i = 0; i < options.reps; ++i) {
    Clock::time_point start = Clock::now();
    RETURN_IF_ERROR(pki::ParseCertificate(tls->admin().cert_pem).status());
    parse.push_back(MsSince(start));
  }

  auto access = v1::AccessService::NewStub(tls_channel);
  std::vector<double> enrol, key_csr;
  for (int i = 0; i < options.reps; ++i) {
    ASSIGN_OR_RETURN(std::string token, CreateToken(*access));
    ASSIGN_OR_RETURN(EnrolTimes t,
                     TimeEnrol(*tls, token, absl::StrCat("bench-host-", i), tls_check));
    enrol.push_back(t.total_ms);
    key_csr.push_back(t.key_csr_ms);
  }

  Figure tc = Summarize(tls_connect), pc = Summarize(plain_connect);
  Figure tw = Summarize(tls_warm), pw = Summarize(plain_warm);
  Figure en = Summarize(enrol), kc = Summarize(key_csr), pa = Summarize(parse);
  printf(
      "kfleet TLS cost, %d reps per figure, wall time in ms; both controllers in this process "
      "on 127.0.0.1\n",
      options.reps);
  printf("%-30s  %-27s  %-28s  %s\n", "figure", "TLS min / median / max",
         "plaintext min / median / max", "ratio of medians");
  Row("connect + first ListHosts", tc, Cell(pc), tc.median / pc.median);
  Row("ListHosts on a warm channel", tw, Cell(pw), tw.median / pw.median);
  printf("%-30s  %s\n", "  certificate parse, per conn.", Cell(pa).c_str());
  Row("enrolment (TLS only)", en, "none: ratio to TLS connect", en.median / tc.median);
  printf("%-30s  %s\n", "  of which key + CSR", Cell(kc).c_str());
  printf("enrolment / plaintext connect: x%.2f (medians)\n", en.median / pc.median);
  printf("rerun: ./build/bench/tls_handshake --reps=%d\n", options.reps);
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (!absl::ConsumePrefix(&arg, "--reps=") || !absl::SimpleAtoi(arg, &options.reps) ||
        options.reps <= 0) {
      fprintf(stderr, "usage: %s [--reps=50]  (a positive number of reps per figure)\n", argv[0]);
      return 2;
    }
  }
  absl::Status s = Run(options);
  if (!s.ok()) {
    fprintf(stderr, "tls_handshake: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace kfleet::controller

int main(int argc, char** argv) { return kfleet::controller::Main(argc, argv); }

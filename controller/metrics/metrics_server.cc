#include "controller/metrics/metrics_server.h"

#include <arpa/inet.h>

#include <exception>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "prometheus/exposer.h"

namespace kfleet::controller {
namespace {

constexpr int kThreads = 2;

absl::Status BadListen(absl::string_view listen, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("metrics: bad listen address \"", listen, "\": ", why,
                   " (expected IP:PORT, [IPv6]:PORT or :PORT, e.g. 127.0.0.1:7401)"));
}

// civetweb's `listening_ports` for `listen`: it takes IP literals only, and a bare port for all
// IPv4 interfaces.
absl::StatusOr<std::string> CivetPorts(absl::string_view listen) {
  size_t colon = listen.rfind(':');
  if (colon == absl::string_view::npos) return BadListen(listen, "no port");
  absl::string_view host = listen.substr(0, colon);
  absl::string_view port_text = listen.substr(colon + 1);
  int port = 0;
  if (port_text.empty() || !absl::c_all_of(port_text, absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return BadListen(listen, "the port is not a number from 0 to 65535");
  }
  if (host.empty()) return std::string(port_text);
  if (host == "localhost") return absl::StrCat("127.0.0.1:", port_text);
  char addr[sizeof(struct in6_addr)];
  if (host.front() == '[' && host.back() == ']') {
    std::string inner(host.substr(1, host.size() - 2));
    if (inet_pton(AF_INET6, inner.c_str(), addr) != 1) {
      return BadListen(listen, "not an IPv6 address");
    }
    return std::string(listen);
  }
  if (inet_pton(AF_INET, std::string(host).c_str(), addr) != 1) {
    return BadListen(listen, "the host must be an IP address or localhost");
  }
  return std::string(listen);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen, std::vector<std::weak_ptr<prometheus::Collectable>> collectables) {
  absl::StatusOr<std::string> ports = CivetPorts(listen);
  if (!ports.ok()) return ports.status();
  std::unique_ptr<prometheus::Exposer> exposer;
  // prometheus-cpp reports a failed bind by throwing (CivetException from CivetServer's
  // constructor); nothing of ours throws, so this is the one place that catches.
  try {
    exposer = std::make_unique<prometheus::Exposer>(*ports, kThreads);
  } catch (const std::exception& e) {
    // civetweb says no more than that it failed; Debian builds it without IPv6 support.
    const bool ipv6 = !listen.empty() && listen.front() == '[';
    return absl::UnavailableError(absl::StrCat(
        "metrics: cannot listen on ", listen, ": ",
        ipv6 ? "IPv6 not supported by this civetweb, or port in use? (pass --metrics-listen "
               "with an IPv4 address"
             : "port in use, or address not on this host? (pass --metrics-listen HOST:PORT",
        "; ", e.what(), ")"));
  }
  std::vector<int> bound = exposer->GetListeningPorts();
  if (bound.empty()) {
    return absl::UnavailableError(absl::StrCat("metrics: no port bound for ", listen));
  }
  // prometheus-cpp creates the /metrics endpoint with its first collectable: without one, an
  // expired stand-in, so that /metrics answers (with the exposer's own metrics) rather than 404.
  if (collectables.empty()) collectables.emplace_back();
  for (auto& collectable : collectables) exposer->RegisterCollectable(collectable);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(exposer), bound.front()));
}

MetricsServer::MetricsServer(std::unique_ptr<prometheus::Exposer> exposer, int port)
    : exposer_(std::move(exposer)), port_(port) {}

MetricsServer::~MetricsServer() = default;

}  // namespace kfleet::controller

#include "common/credentials.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace kfleet {
namespace {

// "HOST:PORT" -> HOST without brackets.
std::string HostPart(absl::string_view address) {
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    return std::string(address.substr(1, close == absl::string_view::npos ? 0 : close - 1));
  }
  size_t colon = address.rfind(':');
  return std::string(address.substr(0, colon));
}

absl::Status InsecureAllowed(const TransportSecurity& security, absl::string_view address,
                             bool dialing = false) {
  if (!security.insecure) {
    return absl::UnimplementedError(
        "TLS is not set up in this build: pass --insecure and use a loopback address "
        "(127.0.0.1, [::1] or localhost)");
  }
  if (!IsLoopbackAddress(address) &&
      !(dialing && HostPart(address) == kGuestForwardedControllerIp)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--insecure is accepted only on loopback, and \"", address,
        "\" is not a loopback address: use 127.0.0.1:PORT, [::1]:PORT or localhost:PORT"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsLoopbackAddress(absl::string_view address) {
  std::string host = HostPart(address);
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TransportSecurity& security, absl::string_view address) {
  if (absl::Status s = InsecureAllowed(security, address); !s.ok()) return s;
  return grpc::InsecureServerCredentials();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const TransportSecurity& security,
                                                           absl::string_view address) {
  if (absl::Status s = InsecureAllowed(security, address, /*dialing=*/true); !s.ok()) return s;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnects are ours (capped backoff with jitter); keep gRPC's own short.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(std::string(address), grpc::InsecureChannelCredentials(), args);
}

}  // namespace kfleet

// The one place that builds gRPC server and channel credentials, and the keepalive settings both
// sides agree on. Session code never touches credentials itself.
//
// TLS is the default: servers present a certificate and verify a client certificate when one is
// offered (mutual TLS; the enrolment RPC is the one call served without one); channels verify
// the server against a CA and present their own certificate when they have one. Plaintext
// (`insecure`) is accepted only on loopback.
#ifndef KFLEET_COMMON_CREDENTIALS_H_
#define KFLEET_COMMON_CREDENTIALS_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet {

// Largest message either side accepts. Log chunks and batches are sized well below it.
inline constexpr int kMaxMessageBytes = 4 << 20;

// gRPC keepalive, read by both the controller and the agent (doc/keepalive.md: the server must
// permit pings at least as often as clients send them).
inline constexpr int kKeepaliveTimeMs = 20000;
inline constexpr int kKeepaliveTimeoutMs = 10000;
inline constexpr int kKeepaliveMinServerPingIntervalMs = 10000;

// Called at every TLS handshake with the client's certificate (PEM), after the chain was verified
// against the CA; empty when the client sent none. A non-OK status refuses the handshake (the
// message is logged). Called on gRPC's threads: must not block.
using ClientCertificateCheck = std::function<absl::Status(absl::string_view peer_cert_pem)>;

struct TransportSecurity {
  // Plaintext, accepted only when every address is on loopback.
  bool insecure = false;
  // PEM contents. ca_pem verifies the peer; cert_pem (the chain, leaf first) and key_pem are our
  // own identity. A channel without cert_pem presents no client certificate (enrolment).
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  // Channels only: files to read the identity and the CA from instead of the PEM fields, re-read
  // when they change (an agent renewing its certificate) for every new connection. All three or
  // none.
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  // Channels only: the name the server's certificate must carry, when it is not the host part of
  // the address (a proxy, a forwarded port).
  std::string server_name;
  // Servers only: see ClientCertificateCheck; unset: every certificate of the CA is accepted.
  ClientCertificateCheck check_client;
};

// True if `address` ("HOST:PORT", "[::1]:PORT", "localhost:PORT") names a loopback host.
bool IsLoopbackAddress(absl::string_view address);

// "HOST:PORT" -> HOST, without the brackets of an IPv6 address.
std::string HostOfAddress(absl::string_view address);

// Inside a guest, the controller is reached at this address of qemu's restricted user-mode
// network, which forwards it to the controller port on the hypervisor's loopback and to nothing
// else. A channel to it counts as loopback for --insecure, and the controller's own server
// certificate names it.
inline constexpr char kGuestForwardedControllerIp[] = "10.0.2.100";

// Server credentials for listening on `address`. Errors name the refused address and the fix.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TransportSecurity& security, absl::string_view address);

// A channel to `address` with our keepalive and message-size settings.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const TransportSecurity& security,
                                                           absl::string_view address);

}  // namespace kfleet

#endif  // KFLEET_COMMON_CREDENTIALS_H_

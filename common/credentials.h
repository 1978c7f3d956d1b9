// The one place that builds gRPC server and channel credentials, and the keepalive settings both
// sides agree on. Session code never touches credentials itself, so mTLS drops in here.
#ifndef KFLEET_COMMON_CREDENTIALS_H_
#define KFLEET_COMMON_CREDENTIALS_H_

#include <grpcpp/grpcpp.h>

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

struct TransportSecurity {
  // Plaintext, accepted only when every address is on loopback.
  bool insecure = false;
};

// True if `address` ("HOST:PORT", "[::1]:PORT", "localhost:PORT") names a loopback host.
bool IsLoopbackAddress(absl::string_view address);

// Inside a guest, the controller is reached at this address of qemu's restricted user-mode
// network, which forwards it to the controller port on the hypervisor's loopback and to nothing
// else. A channel to it counts as loopback for --insecure.
inline constexpr char kGuestForwardedControllerIp[] = "10.0.2.100";

// Server credentials for listening on `address`. Errors name the refused address and the fix.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TransportSecurity& security, absl::string_view address);

// A channel to `address` with our keepalive and message-size settings.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const TransportSecurity& security,
                                                           absl::string_view address);

}  // namespace kfleet

#endif  // KFLEET_COMMON_CREDENTIALS_H_

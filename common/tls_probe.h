// Fetches the certificate chain a TLS server presents, without trusting it: an agent started with
// --ca-fingerprint uses it to find the controller's CA before it has one, and then trusts only the
// certificate whose fingerprint it was given.
#ifndef KFLEET_COMMON_TLS_PROBE_H_
#define KFLEET_COMMON_TLS_PROBE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kfleet {

// Connects to `address` (HOST:PORT; names resolved), completes a TLS handshake offering ALPN "h2"
// (as gRPC does) and returns the certificates the server sent, leaf first, as PEM. Nothing is
// verified. Unavailable if the address cannot be reached or speaks no TLS within `timeout`.
absl::StatusOr<std::vector<std::string>> FetchServerChain(absl::string_view address,
                                                          absl::Duration timeout);

// The certificate of `chain` whose fingerprint is `fingerprint` ("sha256:HEX"), which must be a
// CA certificate; FailedPrecondition naming the fingerprints seen when none matches.
absl::StatusOr<std::string> FindCaByFingerprint(const std::vector<std::string>& chain,
                                                absl::string_view fingerprint);

}  // namespace kfleet

#endif  // KFLEET_COMMON_TLS_PROBE_H_

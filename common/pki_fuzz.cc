// Fuzz target for kfleet's PEM parsing: certificates, chains, CSRs and fingerprints. Checks that
// failures carry a message and that what parses has the documented shape and survives a round
// trip through SplitCertificates.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "common/pki.h"

namespace {

void CheckFingerprint(const std::string& fingerprint) {
  if (fingerprint.size() != 7 + 64 || !absl::StartsWith(fingerprint, "sha256:")) std::abort();
  for (char c : fingerprint.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) std::abort();
  }
}

template <typename T>
void CheckFailure(const absl::StatusOr<T>& result) {
  if (!result.ok() && result.status().message().empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<kfleet::pki::CertInfo> cert = kfleet::pki::ParseCertificate(input);
  CheckFailure(cert);
  if (cert.ok()) {
    CheckFingerprint(cert->fingerprint);
    if (cert->serial.empty()) std::abort();
  }

  absl::StatusOr<std::vector<std::string>> chain = kfleet::pki::SplitCertificates(input);
  CheckFailure(chain);
  if (chain.ok()) {
    if (chain->empty()) std::abort();
    // Re-encoding keeps the DER: the first block has the fingerprint of the input.
    absl::StatusOr<std::string> whole = kfleet::pki::Fingerprint(input);
    absl::StatusOr<std::string> first = kfleet::pki::Fingerprint((*chain)[0]);
    if (!whole.ok() || !first.ok() || *whole != *first) std::abort();
    if (cert.ok() && cert->fingerprint != *first) std::abort();
  }

  absl::StatusOr<kfleet::pki::CsrInfo> csr = kfleet::pki::ParseCsr(input);
  CheckFailure(csr);
  if (csr.ok() && !absl::StartsWith(csr->public_key_pem, "-----BEGIN PUBLIC KEY-----")) {
    std::abort();
  }

  absl::StatusOr<std::string> fingerprint = kfleet::pki::NormalizeFingerprint(input);
  CheckFailure(fingerprint);
  if (fingerprint.ok()) {
    CheckFingerprint(*fingerprint);
    if (kfleet::pki::NormalizeFingerprint(*fingerprint).value_or("") != *fingerprint) std::abort();
  }
  return 0;
}

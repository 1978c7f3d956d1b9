// kfleet's PKI on OpenSSL's C API: EC P-256 keys, a self-signed CA, certificates issued from CSRs,
// and the parsing that identity checks need. Every input is bounded (kMaxPemBytes) and checked;
// errors name what was wrong. Thread-safe: no shared state.
#ifndef KFLEET_COMMON_PKI_H_
#define KFLEET_COMMON_PKI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace kfleet::pki {

// Largest PEM document (key, certificate chain, CSR) accepted anywhere.
inline constexpr size_t kMaxPemBytes = 64 << 10;

// The organization (O) of every certificate kfleet issues.
inline constexpr char kOrganization[] = "kfleet";

// Subject of a certificate or CSR. kfleet uses CN for the identity (host id or user name) and OU
// for the role (agent, admin, operator, viewer; "controller" for the server, "ca" for the CA).
struct Subject {
  std::string common_name;
  std::string organizational_unit;
};

// A new EC P-256 private key, PEM (PKCS#8, unencrypted).
absl::StatusOr<std::string> GenerateKeyPem();

// The public key of a private key, PEM (SubjectPublicKeyInfo).
absl::StatusOr<std::string> PublicKeyPem(absl::string_view private_key_pem);

struct IssueOptions {
  Subject subject;
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries (v4 or v6 text)
  absl::Time not_before;
  absl::Time not_after;
  bool server = false;  // extendedKeyUsage serverAuth (else clientAuth)
  bool client = true;   // clientAuth; both may be set
};

// A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign) for `ca_key_pem`, with a
// random 128-bit serial.
absl::StatusOr<std::string> MakeCaCertificate(absl::string_view ca_key_pem, const Subject& subject,
                                              absl::Time not_before, absl::Time not_after);

// A certificate for `public_key_pem` signed by the CA, with a random 128-bit serial, O=kfleet,
// CA:FALSE, digitalSignature, and the usages and names of `options`.
absl::StatusOr<std::string> IssueCertificate(absl::string_view ca_cert_pem,
                                             absl::string_view ca_key_pem,
                                             absl::string_view public_key_pem,
                                             const IssueOptions& options);

// A PKCS#10 request signed with `key_pem` for `subject` (O=kfleet added).
absl::StatusOr<std::string> MakeCsr(absl::string_view key_pem, const Subject& subject);

struct CsrInfo {
  Subject subject;
  // Subject fields other than CN, OU and O=kfleet (a CSR must not carry any), as "SN=value".
  std::vector<std::string> other_subject_fields;
  // Extensions requested in the CSR (subjectAltName and the like): kfleet never honours them.
  bool has_extensions = false;
  std::string public_key_pem;
};

// Parses a CSR and verifies its self-signature (InvalidArgument if it does not verify).
absl::StatusOr<CsrInfo> ParseCsr(absl::string_view csr_pem);

struct CertInfo {
  std::string serial;  // lowercase hex, no leading zeros, "0" for zero
  Subject subject;
  std::string organization;
  std::string issuer_common_name;
  absl::Time not_before;
  absl::Time not_after;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  bool is_ca = false;
  std::string fingerprint;  // "sha256:" + lowercase hex of the DER encoding
};

// Parses the first certificate of a PEM document.
absl::StatusOr<CertInfo> ParseCertificate(absl::string_view cert_pem);

// Every certificate of a PEM document (a chain), each re-encoded as its own PEM block.
absl::StatusOr<std::vector<std::string>> SplitCertificates(absl::string_view pem);

// "sha256:HEX" of the first certificate of `cert_pem`.
absl::StatusOr<std::string> Fingerprint(absl::string_view cert_pem);

// Checks that `cert_pem` was signed by the CA in `ca_pem` and is valid at `at`.
absl::Status VerifyCertificate(absl::string_view cert_pem, absl::string_view ca_pem, absl::Time at);

// Checks that a private key belongs to the first certificate of `cert_pem`.
absl::Status CheckKeyMatches(absl::string_view key_pem, absl::string_view cert_pem);

// A normalized "sha256:HEX" (lowercase, colons between bytes allowed in the input) or
// InvalidArgument naming the expected form.
absl::StatusOr<std::string> NormalizeFingerprint(absl::string_view text);

}  // namespace kfleet::pki

#endif  // KFLEET_COMMON_PKI_H_

// The controller's CA: the files under STATE_DIR/pki (made on first start, or brought with
// --tls-cert/--tls-key/--tls-ca[/--tls-ca-key]), the server certificate (remade at every start
// for the names and addresses the controller is reached at), the first admin's certificate and
// STATE_DIR/kctl.yaml, and the issuing of agent and user certificates. Thread-safe after Load.
#ifndef KFLEET_CONTROLLER_SECURITY_CERTIFICATE_AUTHORITY_H_
#define KFLEET_CONTROLLER_SECURITY_CERTIFICATE_AUTHORITY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/pki.h"
#include "controller/security/access_store.h"

namespace kfleet::controller {

struct CertificateAuthorityOptions {
  std::string state_dir;
  // The --listen address; its host goes into the server certificate (every local address when
  // it is 0.0.0.0 or [::]).
  std::string listen;
  std::vector<std::string> extra_sans;  // --tls-san: names or addresses
  // Bring your own PKI: all of cert, key and CA, and optionally the CA's key (without it the
  // controller cannot enrol agents or create users).
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  std::string ca_key_file;
  absl::Duration agent_ttl = absl::Hours(24 * 7);
};

struct Issued {
  std::string pem;
  pki::CertInfo info;
};

class CertificateAuthority {
 public:
  // Makes what is missing under STATE_DIR/pki and records the first admin's certificate.
  static absl::StatusOr<std::unique_ptr<CertificateAuthority>> Load(
      const CertificateAuthorityOptions& options, AccessStore* store);

  const std::string& ca_pem() const { return ca_pem_; }
  const std::string& fingerprint() const { return fingerprint_; }
  const std::string& server_chain_pem() const { return server_chain_pem_; }
  const std::string& server_key_pem() const { return server_key_pem_; }
  const std::string& kctl_config_path() const { return kctl_config_path_; }
  absl::Duration agent_ttl() const { return agent_ttl_; }
  // False when brought-own PKI came without the CA key.
  bool can_issue() const { return !ca_key_pem_.empty(); }

  // Writes STATE_DIR/kctl.yaml (0600) naming `address` and the first admin's files.
  absl::Status WriteKctlConfig(const std::string& address);

  // A client certificate for `public_key_pem` with CN = `name`, OU = `role`, valid `ttl` from a
  // few minutes ago (clock skew).
  absl::StatusOr<Issued> IssueClient(absl::string_view public_key_pem, const std::string& name,
                                     const std::string& role, absl::Duration ttl) const;

 private:
  CertificateAuthority() = default;
  std::string ca_pem_;
  std::string ca_key_pem_;
  std::string fingerprint_;
  std::string server_chain_pem_;
  std::string server_key_pem_;
  std::string kctl_config_path_;
  absl::Duration agent_ttl_;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_SECURITY_CERTIFICATE_AUTHORITY_H_

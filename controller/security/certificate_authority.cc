#include "controller/security/certificate_authority.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/credentials.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "controller/security/access_control.h"

namespace kfleet::controller {
namespace {

constexpr absl::Duration kCaLifetime = absl::Hours(24 * 365 * 10);
constexpr absl::Duration kServerLifetime = absl::Hours(24 * 365);
constexpr absl::Duration kAdminLifetime = absl::Hours(24 * 365);
constexpr absl::Duration kClockSkew = absl::Minutes(5);
constexpr char kAdminName[] = "admin";

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

bool IsIp(const std::string& s) {
  in_addr v4;
  in6_addr v6;
  return inet_pton(AF_INET, s.c_str(), &v4) == 1 || inet_pton(AF_INET6, s.c_str(), &v6) == 1;
}

// Every address of this machine's interfaces (for a controller listening on all of them).
std::vector<std::string> LocalAddresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    } else {
      continue;
    }
    out.push_back(buf);
  }
  freeifaddrs(list);
  return out;
}

// The names and addresses the server certificate carries.
pki::IssueOptions ServerNames(const CertificateAuthorityOptions& options) {
  std::set<std::string> dns = {"localhost", "kfleet-controller"};
  std::set<std::string> ips = {"127.0.0.1", "::1", kGuestForwardedControllerIp};
  std::string host = HostOfAddress(options.listen);
  std::vector<std::string> names = options.extra_sans;
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    for (const std::string& a : LocalAddresses()) names.push_back(a);
    char hostname[256] = {};
    if (gethostname(hostname, sizeof hostname - 1) == 0 && hostname[0] != '\0') {
      names.push_back(hostname);
    }
  } else {
    names.push_back(host);
  }
  for (const std::string& n : names) (IsIp(n) ? ips : dns).insert(n);
  pki::IssueOptions o;
  o.subject = {"kfleet-controller", "controller"};
  o.dns_names.assign(dns.begin(), dns.end());
  o.ip_addresses.assign(ips.begin(), ips.end());
  o.server = true;
  o.client = false;
  return o;
}

absl::Status WriteKctlConfig(const std::string& path, const std::string& address) {
  return WriteFileAtomic(
      path, absl::StrCat("# kctl configuration for the kfleet controller at ", address,
                         ", made by it on first start.\n"
                         "# Use it with: kctl --config ",
                         path,
                         " hosts   (or KFLEET_CONFIG, or copy it to ~/.config/kfleet/kctl.yaml\n"
                         "# with the pki/ files it names). Paths are relative to this file.\n"
                         "controller: ",
                         address, "\nca: pki/ca.crt\ncert: pki/admin.crt\nkey: pki/admin.key\n"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CertificateAuthority>> CertificateAuthority::Load(
    const CertificateAuthorityOptions& options, AccessStore* store) {
  auto ca = std::unique_ptr<CertificateAuthority>(new CertificateAuthority());
  ca->agent_ttl_ = options.agent_ttl;
  const std::string dir = options.state_dir + "/pki";
  RETURN_IF_ERROR(MakeDirs(dir));
  ::chmod(dir.c_str(), 0700);
  absl::Time now = absl::Now();
  bool own = !options.cert_file.empty() || !options.key_file.empty() || !options.ca_file.empty();
  if (own) {
    if (options.cert_file.empty() || options.key_file.empty() || options.ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-cert, --tls-key and --tls-ca go together: give all three (and --tls-ca-key to "
          "let the controller enrol agents), or none to let the controller make its own PKI");
    }
    ASSIGN_OR_RETURN(ca->server_chain_pem_, ReadFile(options.cert_file, pki::kMaxPemBytes));
    ASSIGN_OR_RETURN(ca->server_key_pem_, ReadFile(options.key_file, pki::kMaxPemBytes));
    ASSIGN_OR_RETURN(ca->ca_pem_, ReadFile(options.ca_file, pki::kMaxPemBytes));
    if (!options.ca_key_file.empty()) {
      ASSIGN_OR_RETURN(ca->ca_key_pem_, ReadFile(options.ca_key_file, pki::kMaxPemBytes));
      RETURN_IF_ERROR(pki::CheckKeyMatches(ca->ca_key_pem_, ca->ca_pem_));
    }
    if (absl::Status s = pki::CheckKeyMatches(ca->server_key_pem_, ca->server_chain_pem_);
        !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls-key does not belong to --tls-cert: ", s.message()));
    }
    if (absl::Status s = pki::VerifyCertificate(ca->server_chain_pem_, ca->ca_pem_, now); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls-cert is not valid under --tls-ca: ", s.message()));
    }
    ASSIGN_OR_RETURN(ca->fingerprint_, pki::Fingerprint(ca->ca_pem_));
    return ca;
  }

  const std::string ca_key = dir + "/ca.key", ca_crt = dir + "/ca.crt";
  if (!Exists(ca_key) || !Exists(ca_crt)) {
    ASSIGN_OR_RETURN(std::string key, pki::GenerateKeyPem());
    ASSIGN_OR_RETURN(std::string cert, pki::MakeCaCertificate(key, {"kfleet CA", "ca"},
                                                              now - kClockSkew, now + kCaLifetime));
    RETURN_IF_ERROR(WriteFileAtomic(ca_key, key));
    RETURN_IF_ERROR(WriteFileAtomic(ca_crt, cert));
    LogInfo(absl::StrCat("made a new CA in ", dir));
  }
  ASSIGN_OR_RETURN(ca->ca_key_pem_, ReadFile(ca_key, pki::kMaxPemBytes));
  ASSIGN_OR_RETURN(ca->ca_pem_, ReadFile(ca_crt, pki::kMaxPemBytes));
  ASSIGN_OR_RETURN(ca->fingerprint_, pki::Fingerprint(ca->ca_pem_));

  // The server certificate names where the controller listens now; it is remade at every start.
  ASSIGN_OR_RETURN(ca->server_key_pem_, pki::GenerateKeyPem());
  ASSIGN_OR_RETURN(std::string server_public, pki::PublicKeyPem(ca->server_key_pem_));
  pki::IssueOptions server = ServerNames(options);
  server.not_before = now - kClockSkew;
  server.not_after = now + kServerLifetime;
  ASSIGN_OR_RETURN(std::string server_cert,
                   pki::IssueCertificate(ca->ca_pem_, ca->ca_key_pem_, server_public, server));
  // The CA travels in the chain, so that an agent holding only its fingerprint can find it.
  ca->server_chain_pem_ = server_cert + ca->ca_pem_;
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/server.key", ca->server_key_pem_));
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/server.crt", ca->server_chain_pem_));

  const std::string admin_key = dir + "/admin.key", admin_crt = dir + "/admin.crt";
  bool admin_ok = false;
  if (Exists(admin_key) && Exists(admin_crt)) {
    absl::StatusOr<std::string> pem = ReadFile(admin_crt, pki::kMaxPemBytes);
    absl::StatusOr<pki::CertInfo> info =
        pem.ok() ? pki::ParseCertificate(*pem) : absl::StatusOr<pki::CertInfo>(pem.status());
    admin_ok = info.ok() && info->not_after > now + absl::Hours(24 * 30);
  }
  if (!admin_ok) {
    ASSIGN_OR_RETURN(std::string key, pki::GenerateKeyPem());
    ASSIGN_OR_RETURN(std::string pub, pki::PublicKeyPem(key));
    ASSIGN_OR_RETURN(Issued admin, ca->IssueClient(pub, kAdminName, kRoleAdmin, kAdminLifetime));
    RETURN_IF_ERROR(WriteFileAtomic(admin_key, key));
    RETURN_IF_ERROR(WriteFileAtomic(admin_crt, admin.pem));
    RETURN_IF_ERROR(store->RecordCertificate(CertRecord{admin.info.serial, "user", kAdminName, "",
                                                        kRoleAdmin, absl::ToUnixMillis(now),
                                                        absl::ToUnixMillis(admin.info.not_after)}));
  }
  ca->kctl_config_path_ = options.state_dir + "/kctl.yaml";
  return ca;
}

absl::Status CertificateAuthority::WriteKctlConfig(const std::string& address) {
  if (kctl_config_path_.empty()) return absl::OkStatus();  // brought-own PKI: no admin files
  return controller::WriteKctlConfig(kctl_config_path_, address);
}

absl::StatusOr<Issued> CertificateAuthority::IssueClient(absl::string_view public_key_pem,
                                                         const std::string& name,
                                                         const std::string& role,
                                                         absl::Duration ttl) const {
  if (!can_issue()) {
    return absl::FailedPreconditionError(
        "this controller has no CA key (its PKI was brought with --tls-ca and no --tls-ca-key): "
        "issue certificates with that PKI, or start the controller with --tls-ca-key");
  }
  absl::Time now = absl::Now();
  pki::IssueOptions o;
  o.subject = {name, role};
  // Backdated for clock skew, but by little for short lifetimes, so that renewal at two thirds
  // of the lifetime still comes after the issue.
  o.not_before = now - std::min(kClockSkew, ttl / 10);
  o.not_after = now + ttl;
  o.client = true;
  o.server = false;
  Issued out;
  ASSIGN_OR_RETURN(out.pem, pki::IssueCertificate(ca_pem_, ca_key_pem_, public_key_pem, o));
  ASSIGN_OR_RETURN(out.info, pki::ParseCertificate(out.pem));
  return out;
}

}  // namespace kfleet::controller

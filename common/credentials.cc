#include "common/credentials.h"

#include <arpa/inet.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace kfleet {
namespace {

// How often an agent's channel looks for a renewed certificate on disk.
constexpr unsigned kCertificateRefreshSeconds = 10;

absl::Status InsecureAllowed(absl::string_view address, bool dialing) {
  if (!IsLoopbackAddress(address) &&
      !(dialing && HostOfAddress(address) == kGuestForwardedControllerIp)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "plaintext (--insecure) is accepted only on loopback, and \"", address,
        "\" is not a loopback address: leave out --insecure to use TLS (the controller makes its "
        "own CA and certificates in STATE_DIR/pki; agents join with kctl token create), or use "
        "127.0.0.1:PORT, [::1]:PORT or localhost:PORT"));
  }
  return absl::OkStatus();
}

// Runs TransportSecurity::check_client at each handshake, synchronously.
class ClientCertificateVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit ClientCertificateVerifier(ClientCertificateCheck check) : check_(std::move(check)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    grpc::string_ref pem = request->peer_cert();
    absl::Status s = check_(absl::string_view(pem.data(), pem.size()));
    if (s.ok()) {
      *sync_status = grpc::Status::OK;
    } else {
      LogWarning(absl::StrCat("TLS handshake refused: ", s.message()));
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(s.message()));
    }
    return true;
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  ClientCertificateCheck check_;
};

grpc::ChannelArguments BaseChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnects are ours (capped backoff with jitter); keep gRPC's own short.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return args;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsChannelCredentials(
    const TransportSecurity& security) {
  bool files = !security.cert_file.empty() || !security.key_file.empty();
  if (files) {
    if (security.cert_file.empty() || security.key_file.empty() || security.ca_file.empty()) {
      return absl::InvalidArgumentError(
          "TLS from files needs all three of the certificate, key and CA files");
    }
    // Re-read for every new connection once changed: a renewed certificate is used on the next
    // reconnect while the current connection goes on.
    auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        security.key_file, security.cert_file, security.ca_file, kCertificateRefreshSeconds);
    grpc::experimental::TlsChannelCredentialsOptions options;
    options.set_certificate_provider(provider);
    options.watch_root_certs();
    options.watch_identity_key_cert_pairs();
    options.set_verify_server_certs(true);
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::TlsCredentials(options);
    if (creds == nullptr) return absl::InternalError("gRPC refused the TLS channel settings");
    return creds;
  }
  if (security.ca_pem.empty()) {
    return absl::InvalidArgumentError(
        "no CA certificate to verify the controller with: give the CA (kctl: `ca:` in kctl.yaml; "
        "kfleet-agent: --ca-cert FILE or --ca-fingerprint sha256:HEX), or --insecure for a "
        "plaintext controller on loopback");
  }
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = security.ca_pem;
  options.pem_private_key = security.key_pem;
  options.pem_cert_chain = security.cert_pem;
  return grpc::SslCredentials(options);
}

}  // namespace

std::string HostOfAddress(absl::string_view address) {
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    return std::string(address.substr(1, close == absl::string_view::npos ? 0 : close - 1));
  }
  size_t colon = address.rfind(':');
  return std::string(address.substr(0, colon));
}

bool IsLoopbackAddress(absl::string_view address) {
  std::string host = HostOfAddress(address);
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TransportSecurity& security, absl::string_view address) {
  if (security.insecure) {
    if (absl::Status s = InsecureAllowed(address, /*dialing=*/false); !s.ok()) return s;
    return grpc::InsecureServerCredentials();
  }
  if (security.cert_pem.empty() || security.key_pem.empty() || security.ca_pem.empty()) {
    return absl::InvalidArgumentError(
        "a TLS server needs its certificate, its key and the CA that signs client certificates");
  }
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      security.ca_pem,
      std::vector<grpc::experimental::IdentityKeyCertPair>{{security.key_pem, security.cert_pem}});
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // A certificate is asked for and, if sent, must verify against the CA; a caller without one
  // can only enrol (the services refuse everything else).
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  if (security.check_client) {
    options.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<ClientCertificateVerifier>(
            security.check_client));
  }
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::experimental::TlsServerCredentials(options);
  if (creds == nullptr) return absl::InternalError("gRPC refused the TLS server settings");
  return creds;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const TransportSecurity& security,
                                                           absl::string_view address) {
  grpc::ChannelArguments args = BaseChannelArguments();
  if (security.insecure) {
    if (absl::Status s = InsecureAllowed(address, /*dialing=*/true); !s.ok()) return s;
    return grpc::CreateCustomChannel(std::string(address), grpc::InsecureChannelCredentials(),
                                     args);
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = TlsChannelCredentials(security);
  if (!creds.ok()) return creds.status();
  if (!security.server_name.empty()) {
    args.SetSslTargetNameOverride(security.server_name);
  }
  return grpc::CreateCustomChannel(std::string(address), *creds, args);
}

}  // namespace kfleet

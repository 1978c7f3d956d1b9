#include "common/tls_probe.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/openssl_handles.h"
#include "common/pki.h"
#include "common/status_macros.h"

namespace kfleet {
namespace {

// Every OpenSSL handle of this file is owned through one of these (Free: openssl_handles.h).
using AddrInfoPtr = std::unique_ptr<addrinfo, Free<freeaddrinfo>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Free<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Free<SSL_free>>;

// A socket, closed on destruction.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&&) = delete;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string ErrnoText(int err) {
  char buf[256];
  return strerror_r(err, buf, sizeof(buf));  // the GNU variant: returns the text
}

struct HostPort {
  std::string host;
  std::string port;
};

// "[::1]:7400", "127.0.0.1:7400" or "name:7400".
absl::StatusOr<HostPort> SplitAddress(absl::string_view address) {
  HostPort out;
  absl::string_view port;
  bool bracketed = absl::StartsWith(address, "[");
  if (bracketed) {
    size_t close = address.find(']');
    if (close != absl::string_view::npos && address.substr(close + 1, 1) == ":") {
      out.host = std::string(address.substr(1, close - 1));
      port = address.substr(close + 2);
    }
  } else if (size_t colon = address.rfind(':'); colon != absl::string_view::npos) {
    out.host = std::string(address.substr(0, colon));
    port = address.substr(colon + 1);
  }
  uint32_t number = 0;
  bool ok = !out.host.empty() && (bracketed || out.host.find(':') == std::string::npos) &&
            !port.empty() && std::all_of(port.begin(), port.end(), absl::ascii_isdigit) &&
            absl::SimpleAtoi(port, &number) && number > 0 && number <= 65535;
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", absl::CHexEscape(address),
                     "\" is not an address: expected HOST:PORT, such as controller.example:7400, "
                     "127.0.0.1:7400 or [::1]:7400"));
  }
  out.port = std::string(port);
  return out;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Waits until `fd` is ready for `events` (or in error, which the next call reports).
absl::Status WaitFor(int fd, short events, absl::Time deadline, absl::string_view doing) {
  while (true) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::UnavailableError(absl::StrCat("timed out ", doing));
    }
    pollfd p = {fd, events, 0};
    int64_t ms = std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, INT_MAX);
    int n = ::poll(&p, 1, static_cast<int>(ms));
    if (n > 0) return absl::OkStatus();
    if (n < 0 && errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("poll: ", ErrnoText(errno)));
    }
  }
}

absl::StatusOr<Socket> ConnectOne(const addrinfo& ai, absl::Time deadline) {
  Socket s(::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol));
  if (s.get() < 0) return absl::UnavailableError(absl::StrCat("socket: ", ErrnoText(errno)));
  if (::connect(s.get(), ai.ai_addr, ai.ai_addrlen) == 0) return s;
  if (errno != EINPROGRESS && errno != EINTR) {
    return absl::UnavailableError(ErrnoText(errno));
  }
  RETURN_IF_ERROR(WaitFor(s.get(), POLLOUT, deadline, "connecting"));
  int err = 0;
  socklen_t length = sizeof(err);
  if (::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &length) != 0) err = errno;
  if (err != 0) return absl::UnavailableError(ErrnoText(err));
  return s;
}

// Connects to the first address of `host` that answers.
absl::StatusOr<Socket> Connect(const HostPort& target, absl::Time deadline) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(target.host.c_str(), target.port.c_str(), &hints, &found);
  AddrInfoPtr list(found);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", target.host, ": ",
                     rc == EAI_SYSTEM ? ErrnoText(errno) : gai_strerror(rc)));
  }
  std::vector<std::string> failures;
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    absl::StatusOr<Socket> s = ConnectOne(*ai, deadline);
    if (s.ok()) return s;
    char host[NI_MAXHOST] = "?";
    ::getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), nullptr, 0, NI_NUMERICHOST);
    failures.push_back(absl::StrCat("connect to ", host, ": ", s.status().message()));
  }
  return absl::UnavailableError(absl::StrJoin(failures, "; "));
}

// Sends what OpenSSL queued in `out`. MSG_NOSIGNAL: a peer that hung up must not raise SIGPIPE.
absl::Status Flush(int fd, BIO* out, absl::Time deadline) {
  char buf[16384];
  while (BIO_ctrl_pending(out) > 0) {
    int n = BIO_read(out, buf, sizeof(buf));
    if (n <= 0) return absl::InternalError("OpenSSL: reading a memory BIO failed");
    for (int sent = 0; sent < n;) {
      ssize_t w = ::send(fd, buf + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL);
      if (w >= 0) {
        sent += static_cast<int>(w);
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        RETURN_IF_ERROR(WaitFor(fd, POLLOUT, deadline, "sending"));
      } else if (errno != EINTR) {
        return absl::UnavailableError(absl::StrCat("send: ", ErrnoText(errno)));
      }
    }
  }
  return absl::OkStatus();
}

// Waits for bytes from the server and hands them to OpenSSL through `in`.
absl::Status Receive(int fd, BIO* in, absl::Time deadline) {
  RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline, "waiting for the TLS handshake"));
  char buf[16384];
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  if (n == 0) {
    return absl::UnavailableError("the server closed the connection during the TLS handshake");
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("recv: ", ErrnoText(errno)));
  }
  if (BIO_write(in, buf, static_cast<int>(n)) != n) {
    return absl::InternalError("OpenSSL: writing a memory BIO failed");
  }
  return absl::OkStatus();
}

// The handshake runs over memory BIOs and our own socket calls, so that every wait is bounded
// by the deadline and no write can raise SIGPIPE.
absl::Status Handshake(SSL* ssl, int fd, BIO* in, BIO* out, absl::Time deadline) {
  while (true) {
    ERR_clear_error();
    int rc = SSL_connect(ssl);
    int error = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc);
    if (error != SSL_ERROR_NONE && error != SSL_ERROR_WANT_READ) {
      std::string why = TakeOpenSslErrors();
      (void)Flush(fd, out, deadline);  // the alert, if any, is a courtesy to the server
      return absl::UnavailableError(absl::StrCat("TLS handshake failed: ", why));
    }
    RETURN_IF_ERROR(Flush(fd, out, deadline));
    if (rc == 1) return absl::OkStatus();
    RETURN_IF_ERROR(Receive(fd, in, deadline));
  }
}

absl::StatusOr<std::vector<std::string>> PeerChain(SSL* ssl) {
  STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);  // owned by `ssl`
  if (chain == nullptr || sk_X509_num(chain) == 0) {
    return absl::UnavailableError("the server presented no certificate");
  }
  std::vector<std::string> pems;
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (bio == nullptr || PEM_write_bio_X509(bio.get(), sk_X509_value(chain, i)) != 1) {
      return absl::InternalError(
          absl::StrCat("OpenSSL: writing a certificate: ", TakeOpenSslErrors()));
    }
    char* data = nullptr;
    long size = BIO_get_mem_data(bio.get(), &data);
    pems.emplace_back(data, static_cast<size_t>(size));
  }
  return pems;
}

absl::StatusOr<std::vector<std::string>> Fetch(const HostPort& target, absl::Time deadline) {
  ASSIGN_OR_RETURN(Socket socket, Connect(target, deadline));
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr)
    return absl::InternalError(absl::StrCat("SSL_CTX_new: ", TakeOpenSslErrors()));
  // Nothing is verified here: the caller trusts a certificate by its fingerprint.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SslPtr ssl(SSL_new(ctx.get()));
  BioPtr owned_in(BIO_new(BIO_s_mem()));
  BioPtr owned_out(BIO_new(BIO_s_mem()));
  if (ssl == nullptr || owned_in == nullptr || owned_out == nullptr) {
    return absl::InternalError(absl::StrCat("OpenSSL: SSL_new: ", TakeOpenSslErrors()));
  }
  BIO* in = owned_in.get();
  BIO* out = owned_out.get();
  BIO_set_mem_eof_return(in, -1);  // empty means "wait for more", not end of stream
  SSL_set_bio(ssl.get(), owned_in.release(), owned_out.release());  // `ssl` owns both now
  static constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};
  if (SSL_set_alpn_protos(ssl.get(), kAlpnH2, sizeof(kAlpnH2)) != 0 ||  // 0 is success
      (!IsIpLiteral(target.host) &&
       SSL_set_tlsext_host_name(ssl.get(), target.host.c_str()) != 1)) {
    return absl::InternalError(absl::StrCat("OpenSSL: ALPN or SNI: ", TakeOpenSslErrors()));
  }
  SSL_set_connect_state(ssl.get());
  RETURN_IF_ERROR(Handshake(ssl.get(), socket.get(), in, out, deadline));
  ASSIGN_OR_RETURN(std::vector<std::string> chain, PeerChain(ssl.get()));
  if (SSL_shutdown(ssl.get()) >= 0) (void)Flush(socket.get(), out, deadline);
  ERR_clear_error();
  return chain;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> FetchServerChain(absl::string_view address,
                                                          absl::Duration timeout) {
  ASSIGN_OR_RETURN(HostPort target, SplitAddress(address));
  absl::StatusOr<std::vector<std::string>> chain = Fetch(target, absl::Now() + timeout);
  if (chain.ok()) return chain;
  return absl::Status(chain.status().code(),
                      absl::StrCat("cannot fetch the TLS certificates of ", address, " (within ",
                                   absl::FormatDuration(timeout), "): ", chain.status().message()));
}

absl::StatusOr<std::string> FindCaByFingerprint(const std::vector<std::string>& chain,
                                                absl::string_view fingerprint) {
  ASSIGN_OR_RETURN(std::string want, pki::NormalizeFingerprint(fingerprint));
  std::vector<std::string> seen;
  for (const std::string& pem : chain) {
    absl::StatusOr<pki::CertInfo> info = pki::ParseCertificate(pem);
    if (!info.ok()) {
      seen.push_back(absl::StrCat("an unreadable certificate (", info.status().message(), ")"));
      continue;
    }
    if (info->fingerprint == want) {
      if (!info->is_ca) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the certificate with fingerprint ", want, " (CN=", info->subject.common_name,
            ") is not a CA certificate: pass the fingerprint of the CA, as kctl token create "
            "prints it"));
      }
      return pem;
    }
    seen.push_back(absl::StrCat(info->fingerprint, " (CN=", info->subject.common_name,
                                info->is_ca ? ", a CA)" : ")"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no certificate the controller presented has fingerprint ", want,
      "; it presented: ", seen.empty() ? "no certificates" : absl::StrJoin(seen, ", ")));
}

}  // namespace kfleet

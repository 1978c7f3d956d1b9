#include "common/tls_probe.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/pki.h"

namespace kfleet {
namespace {

using ::testing::HasSubstr;

struct BioFree {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Nothing is verified by the probe, so any fixed time serves as the certificates' clock.
const absl::Time kNow = absl::FromUnixSeconds(1700000000);

// A socket bound to 127.0.0.1 on a free port, closed on destruction.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listen) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    if (listen) {
      EXPECT_EQ(::listen(fd_, 8), 0);
    }
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackSocket() { ::close(fd_); }
  int fd() const { return fd_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// Serves every connection on a thread until destroyed: a TLS handshake with `chain` (leaf first)
// offering only ALPN h2 as gRPC does, or, with no chain, an HTTP answer instead of TLS.
class TestServer {
 public:
  TestServer(const std::vector<std::string>& chain, const std::string& key_pem)
      : listener_(/*listen=*/true) {
    if (!chain.empty()) ctx_.reset(MakeContext(chain, key_pem));
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestServer() {
    stopping_ = true;
    ::shutdown(listener_.fd(), SHUT_RDWR);  // wakes accept()
    thread_.join();
  }

  std::string address() const { return listener_.address(); }
  int port() const { return listener_.port(); }
  bool saw_h2() {
    absl::MutexLock lock(&mu_);
    return saw_h2_;
  }
  std::string server_name() {
    absl::MutexLock lock(&mu_);
    return server_name_;
  }

 private:
  static int SelectAlpn(SSL* ssl, const unsigned char** out, unsigned char* out_length,
                        const unsigned char* in, unsigned int in_length, void* arg) {
    static constexpr unsigned char kH2[] = {2, 'h', '2'};
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, out_length, kH2, sizeof(kH2), in, in_length) !=
        OPENSSL_NPN_NEGOTIATED) {
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = selected;
    auto* self = static_cast<TestServer*>(arg);
    absl::MutexLock lock(&self->mu_);
    self->saw_h2_ = true;
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    self->server_name_ = name == nullptr ? "" : name;
    return SSL_TLSEXT_ERR_OK;
  }

  SSL_CTX* MakeContext(const std::vector<std::string>& chain, const std::string& key_pem) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, this);
    for (size_t i = 0; i < chain.size(); ++i) {
      BioPtr bio(BIO_new_mem_buf(chain[i].data(), static_cast<int>(chain[i].size())));
      X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
      EXPECT_EQ(i == 0 ? SSL_CTX_use_certificate(ctx, cert) : SSL_CTX_add1_chain_cert(ctx, cert),
                1);
      X509_free(cert);
    }
    BioPtr bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx, key), 1);
    EVP_PKEY_free(key);
    return ctx;
  }

  void Serve() {
    // Writes to a client that already left fail with EPIPE instead of killing the test.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    while (true) {
      int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      timeval five_seconds = {5, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five_seconds, sizeof(five_seconds));
      if (ctx_ != nullptr) {
        SSL* ssl = SSL_new(ctx_.get());
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
          char byte;
          SSL_read(ssl, &byte, 1);  // until the client closes
        }
        SSL_free(ssl);
      } else {
        char buf[4096];
        (void)::recv(fd, buf, sizeof(buf), 0);
        constexpr char kAnswer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        (void)::send(fd, kAnswer, sizeof(kAnswer) - 1, MSG_NOSIGNAL);
      }
      ::close(fd);
    }
  }

  LoopbackSocket listener_;
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  bool saw_h2_ ABSL_GUARDED_BY(mu_) = false;
  std::string server_name_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class TlsProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_key_ = *pki::GenerateKeyPem();
    ca_cert_ = *pki::MakeCaCertificate(ca_key_, {"kfleet-ca", "ca"}, kNow - absl::Hours(1),
                                       kNow + absl::Hours(24));
    leaf_key_ = *pki::GenerateKeyPem();
    pki::IssueOptions options;
    options.subject = {"controller-1", "controller"};
    options.dns_names = {"localhost"};
    options.ip_addresses = {"127.0.0.1"};
    options.not_before = kNow - absl::Hours(1);
    options.not_after = kNow + absl::Hours(24);
    options.server = true;
    leaf_cert_ = *pki::IssueCertificate(ca_cert_, ca_key_, *pki::PublicKeyPem(leaf_key_), options);
  }

  std::string ca_key_;
  std::string ca_cert_;
  std::string leaf_key_;
  std::string leaf_cert_;
};

// Validates that the probe completes a handshake offering h2 and returns leaf and CA, in order.
TEST_F(TlsProbeTest, FetchesServerChain) {
  TestServer server({leaf_cert_, ca_cert_}, leaf_key_);
  absl::StatusOr<std::vector<std::string>> chain =
      FetchServerChain(server.address(), absl::Seconds(10));
  ASSERT_TRUE(chain.ok()) << chain.status();
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ(*pki::Fingerprint((*chain)[0]), *pki::Fingerprint(leaf_cert_));
  EXPECT_EQ(*pki::Fingerprint((*chain)[1]), *pki::Fingerprint(ca_cert_));
  EXPECT_TRUE(server.saw_h2());
  EXPECT_EQ(server.server_name(), "");  // no SNI for an IP address
}

// Validates that a host name is resolved and sent as SNI.
TEST_F(TlsProbeTest, ResolvesNamesAndSendsSni) {
  TestServer server({leaf_cert_, ca_cert_}, leaf_key_);
  absl::StatusOr<std::vector<std::string>> chain =
      FetchServerChain(absl::StrCat("localhost:", server.port()), absl::Seconds(10));
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_EQ(chain->size(), 2u);
  EXPECT_EQ(server.server_name(), "localhost");
}

// Validates that the CA is found by fingerprint in any spelling, and that a fingerprint nobody
// presented or one of a non-CA certificate is refused.
TEST_F(TlsProbeTest, FindCaByFingerprint) {
  TestServer server({leaf_cert_, ca_cert_}, leaf_key_);
  absl::StatusOr<std::vector<std::string>> chain =
      FetchServerChain(server.address(), absl::Seconds(10));
  ASSERT_TRUE(chain.ok()) << chain.status();
  std::string ca_fingerprint = *pki::Fingerprint(ca_cert_);
  std::string leaf_fingerprint = *pki::Fingerprint(leaf_cert_);

  absl::StatusOr<std::string> ca = FindCaByFingerprint(*chain, ca_fingerprint);
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(*pki::Fingerprint(*ca), ca_fingerprint);
  EXPECT_TRUE(FindCaByFingerprint(*chain, absl::AsciiStrToUpper(ca_fingerprint)).ok());

  std::string other =
      *pki::MakeCaCertificate(ca_key_, {"other-ca", "ca"}, kNow, kNow + absl::Hours(1));
  absl::StatusOr<std::string> missing = FindCaByFingerprint(*chain, *pki::Fingerprint(other));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr(*pki::Fingerprint(other)));
  EXPECT_THAT(missing.status().message(), HasSubstr(ca_fingerprint));
  EXPECT_THAT(missing.status().message(), HasSubstr(leaf_fingerprint));

  absl::StatusOr<std::string> leaf = FindCaByFingerprint(*chain, leaf_fingerprint);
  EXPECT_EQ(leaf.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(leaf.status().message(), HasSubstr("not a CA certificate"));

  EXPECT_EQ(FindCaByFingerprint(*chain, "abc").status().code(), absl::StatusCode::kInvalidArgument);
}

// Validates that a port with nothing listening is Unavailable and the message names the address.
TEST_F(TlsProbeTest, NothingListeningIsUnavailable) {
  LoopbackSocket closed(/*listen=*/false);  // bound, so no one else takes the port
  absl::StatusOr<std::vector<std::string>> chain =
      FetchServerChain(closed.address(), absl::Seconds(10));
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(chain.status().message(), HasSubstr(closed.address()));
  EXPECT_THAT(chain.status().message(), HasSubstr("refused"));
}

// Validates that a server answering in plain text fails fast with Unavailable.
TEST_F(TlsProbeTest, PlainTextServerIsUnavailable) {
  TestServer server({}, "");
  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<std::string>> chain =
      FetchServerChain(server.address(), absl::Seconds(10));
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(chain.status().message(), HasSubstr("TLS handshake failed"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// Validates that a server that accepts but never answers gives Unavailable once the timeout
// passes, not a hang.
TEST_F(TlsProbeTest, SilentServerTimesOut) {
  LoopbackSocket silent(/*listen=*/true);  // the kernel completes connections; no one answers
  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<std::string>> chain =
      FetchServerChain(silent.address(), absl::Milliseconds(300));
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(chain.status().message(), HasSubstr("timed out"));
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Seconds(5));
}

// Validates that malformed addresses are refused before any connection is tried.
TEST_F(TlsProbeTest, MalformedAddressRefused) {
  for (const char* bad :
       {"", "controller", "[::1]7400", "host:", "host:port", "::1:7400", "host:70000", "[::1"}) {
    EXPECT_EQ(FetchServerChain(bad, absl::Seconds(1)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

}  // namespace
}  // namespace kfleet

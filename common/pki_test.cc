#include "common/pki.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"

namespace kfleet::pki {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

struct BioFree {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
struct KeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct ReqFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// A fixed clock: every time in these tests is relative to it.
const absl::Time kNow = absl::FromUnixSeconds(1700000000);

BioPtr MemBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::unique_ptr<EVP_PKEY, KeyFree> ReadKey(const std::string& pem) {
  return std::unique_ptr<EVP_PKEY, KeyFree>(
      PEM_read_bio_PrivateKey(MemBio(pem).get(), nullptr, nullptr, nullptr));
}

std::unique_ptr<X509_REQ, ReqFree> ReadReq(const std::string& pem) {
  return std::unique_ptr<X509_REQ, ReqFree>(
      PEM_read_bio_X509_REQ(MemBio(pem).get(), nullptr, nullptr, nullptr));
}

std::string WriteReq(X509_REQ* req) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509_REQ(bio.get(), req), 1);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

// The DER inside the first PEM block, decoded without OpenSSL.
std::string DerOfPem(const std::string& pem) {
  std::string base64;
  bool inside = false;
  for (absl::string_view line : absl::StrSplit(pem, '\n')) {
    if (absl::StartsWith(line, "-----BEGIN")) {
      inside = true;
    } else if (absl::StartsWith(line, "-----END")) {
      break;
    } else if (inside) {
      base64.append(line.data(), line.size());
    }
  }
  std::string der;
  EXPECT_TRUE(absl::Base64Unescape(base64, &der));
  return der;
}

std::string Sha256Hex(absl::string_view data) {
  absl::StatusOr<Sha256> h = Sha256::Create();
  EXPECT_TRUE(h.ok());
  h->Update(data);
  return *h->FinishHex();
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_key_ = *GenerateKeyPem();
    ca_cert_ = *MakeCaCertificate(ca_key_, {"kfleet-ca", "ca"}, kNow - absl::Hours(1),
                                  kNow + absl::Hours(24 * 365));
    leaf_key_ = *GenerateKeyPem();
  }

  IssueOptions ServerOptions() const {
    IssueOptions options;
    options.subject = {"controller-1", "controller"};
    options.dns_names = {"localhost", "controller.example"};
    options.ip_addresses = {"127.0.0.1", "::1"};
    options.not_before = kNow - absl::Minutes(5);
    options.not_after = kNow + absl::Hours(24);
    options.server = true;
    options.client = true;
    return options;
  }

  std::string Issue(const IssueOptions& options) {
    absl::StatusOr<std::string> cert =
        IssueCertificate(ca_cert_, ca_key_, *PublicKeyPem(leaf_key_), options);
    EXPECT_TRUE(cert.ok()) << cert.status();
    return cert.ok() ? *cert : "";
  }

  std::string ca_key_;
  std::string ca_cert_;
  std::string leaf_key_;
};

// Validates that keys are fresh EC P-256 keys in PKCS#8 PEM with a matching public key PEM.
TEST_F(PkiTest, GeneratesEcP256Keys) {
  std::string other = *GenerateKeyPem();
  EXPECT_NE(leaf_key_, other);
  EXPECT_THAT(leaf_key_, HasSubstr("-----BEGIN PRIVATE KEY-----"));
  auto key = ReadKey(leaf_key_);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);
  absl::StatusOr<std::string> pub = PublicKeyPem(leaf_key_);
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_THAT(*pub, HasSubstr("-----BEGIN PUBLIC KEY-----"));
  EXPECT_NE(*pub, *PublicKeyPem(other));
}

// Validates that a CA and a certificate it issued read back with every field kfleet relies on.
TEST_F(PkiTest, IssuedCertificateRoundTrip) {
  absl::StatusOr<CertInfo> ca = ParseCertificate(ca_cert_);
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_TRUE(ca->is_ca);
  EXPECT_EQ(ca->subject.common_name, "kfleet-ca");
  EXPECT_EQ(ca->subject.organizational_unit, "ca");
  EXPECT_EQ(ca->organization, kOrganization);
  EXPECT_EQ(ca->issuer_common_name, "kfleet-ca");
  EXPECT_EQ(ca->not_before, kNow - absl::Hours(1));

  absl::StatusOr<CertInfo> leaf = ParseCertificate(Issue(ServerOptions()));
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_FALSE(leaf->is_ca);
  EXPECT_EQ(leaf->subject.common_name, "controller-1");
  EXPECT_EQ(leaf->subject.organizational_unit, "controller");
  EXPECT_EQ(leaf->organization, "kfleet");
  EXPECT_EQ(leaf->issuer_common_name, "kfleet-ca");
  EXPECT_EQ(leaf->not_before, kNow - absl::Minutes(5));
  EXPECT_EQ(leaf->not_after, kNow + absl::Hours(24));
  EXPECT_THAT(leaf->dns_names, ElementsAre("localhost", "controller.example"));
  EXPECT_THAT(leaf->ip_addresses, ElementsAre("127.0.0.1", "::1"));
  EXPECT_NE(leaf->serial, ca->serial);
  EXPECT_THAT(leaf->fingerprint, ::testing::StartsWith("sha256:"));
  EXPECT_EQ(leaf->fingerprint.size(), 7u + 64u);
}

// Validates that serials are random, positive, non-zero and printed without leading zeros.
TEST_F(PkiTest, SerialsAreUniqueAndPositive) {
  std::set<std::string> serials;
  for (int i = 0; i < 16; ++i) {
    std::string serial = ParseCertificate(Issue(ServerOptions()))->serial;
    ASSERT_FALSE(serial.empty());
    EXPECT_NE(serial[0], '-');
    EXPECT_NE(serial[0], '0');
    EXPECT_LE(serial.size(), 32u);
    EXPECT_EQ(serial, absl::AsciiStrToLower(serial));
    serials.insert(serial);
  }
  EXPECT_EQ(serials.size(), 16u);
}

// Validates that a certificate verifies against its CA within its validity only.
TEST_F(PkiTest, VerifyCertificate) {
  std::string cert = Issue(ServerOptions());
  EXPECT_TRUE(VerifyCertificate(cert, ca_cert_, kNow).ok());

  std::string other_key = *GenerateKeyPem();
  std::string other_ca = *MakeCaCertificate(other_key, {"kfleet-ca", "ca"}, kNow - absl::Hours(1),
                                            kNow + absl::Hours(24));
  absl::Status wrong_ca = VerifyCertificate(cert, other_ca, kNow);
  EXPECT_EQ(wrong_ca.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_ca.message(), HasSubstr("does not verify"));

  absl::Status expired = VerifyCertificate(cert, ca_cert_, kNow + absl::Hours(25));
  EXPECT_EQ(expired.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(expired.message(), HasSubstr("expired"));

  absl::Status early = VerifyCertificate(cert, ca_cert_, kNow - absl::Minutes(10));
  EXPECT_EQ(early.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(early.message(), HasSubstr("not yet valid"));
}

// Validates that a certificate whose notAfter has passed fails verification at the present time.
TEST_F(PkiTest, VerifyRejectsCertificateExpiredInThePast) {
  IssueOptions options = ServerOptions();
  options.not_before = kNow - absl::Hours(2);
  options.not_after = kNow - absl::Minutes(1);
  std::string cert = Issue(options);
  EXPECT_EQ(ParseCertificate(cert)->not_after, kNow - absl::Minutes(1));
  EXPECT_EQ(VerifyCertificate(cert, ca_cert_, kNow).code(), absl::StatusCode::kInvalidArgument);
}

// Validates that a key matches its own certificate and no other.
TEST_F(PkiTest, CheckKeyMatches) {
  std::string cert = Issue(ServerOptions());
  EXPECT_TRUE(CheckKeyMatches(leaf_key_, cert).ok());
  EXPECT_TRUE(CheckKeyMatches(ca_key_, ca_cert_).ok());
  absl::Status mismatch = CheckKeyMatches(ca_key_, cert);
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.message(), HasSubstr("does not belong"));
}

// Validates that issuing refuses a CA key that is not the CA's and malformed names and times.
TEST_F(PkiTest, IssueRefusesBadInput) {
  std::string pub = *PublicKeyPem(leaf_key_);
  EXPECT_EQ(IssueCertificate(ca_cert_, leaf_key_, pub, ServerOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
  IssueOptions bad_ip = ServerOptions();
  bad_ip.ip_addresses = {"300.1.1.1"};
  EXPECT_THAT(IssueCertificate(ca_cert_, ca_key_, pub, bad_ip).status().message(),
              HasSubstr("\"300.1.1.1\" is not an IPv4 or IPv6 address"));
  IssueOptions bad_dns = ServerOptions();
  bad_dns.dns_names = {"a,DNS:evil.example"};
  EXPECT_EQ(IssueCertificate(ca_cert_, ca_key_, pub, bad_dns).status().code(),
            absl::StatusCode::kInvalidArgument);
  IssueOptions backwards = ServerOptions();
  backwards.not_after = backwards.not_before - absl::Seconds(1);
  EXPECT_EQ(IssueCertificate(ca_cert_, ca_key_, pub, backwards).status().code(),
            absl::StatusCode::kInvalidArgument);
  IssueOptions no_cn = ServerOptions();
  no_cn.subject.common_name.clear();
  EXPECT_EQ(IssueCertificate(ca_cert_, ca_key_, pub, no_cn).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A leaf is not a CA: it cannot issue.
  std::string leaf = Issue(ServerOptions());
  EXPECT_EQ(IssueCertificate(leaf, leaf_key_, pub, ServerOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Validates that a CSR reads back with its subject and public key and nothing else.
TEST_F(PkiTest, CsrRoundTrip) {
  absl::StatusOr<std::string> csr = MakeCsr(leaf_key_, {"host-7", "agent"});
  ASSERT_TRUE(csr.ok()) << csr.status();
  absl::StatusOr<CsrInfo> info = ParseCsr(*csr);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->subject.common_name, "host-7");
  EXPECT_EQ(info->subject.organizational_unit, "agent");
  EXPECT_THAT(info->other_subject_fields, IsEmpty());
  EXPECT_FALSE(info->has_extensions);
  EXPECT_EQ(info->public_key_pem, *PublicKeyPem(leaf_key_));
}

// Validates that a CSR whose subject changed after signing fails verification.
TEST_F(PkiTest, CsrWithTamperedSubjectFailsVerification) {
  auto req = ReadReq(*MakeCsr(leaf_key_, {"host-7", "agent"}));
  ASSERT_NE(req, nullptr);
  X509_NAME* name = X509_NAME_new();
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("admin-user"), -1, -1, 0);
  ASSERT_EQ(X509_REQ_set_subject_name(req.get(), name), 1);
  X509_NAME_free(name);
  absl::StatusOr<CsrInfo> info = ParseCsr(WriteReq(req.get()));
  EXPECT_EQ(info.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(info.status().message(), HasSubstr("the CSR's signature does not verify"));
}

// Validates that subject fields besides CN, OU and O=kfleet, and requested extensions, are
// reported.
TEST_F(PkiTest, CsrExtraSubjectFieldsAndExtensionsReported) {
  auto key = ReadKey(leaf_key_);
  std::unique_ptr<X509_REQ, ReqFree> req(X509_REQ_new());
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  for (auto [field, value] : std::vector<std::pair<const char*, const char*>>{
           {"C", "US"}, {"O", "other"}, {"OU", "agent"}, {"CN", "host-7"}, {"CN", "second"}}) {
    ASSERT_EQ(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                         reinterpret_cast<const unsigned char*>(value), -1, -1, 0),
              1);
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(exts,
                         X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "DNS:evil"));
  ASSERT_EQ(X509_REQ_add_extensions(req.get(), exts), 1);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  ASSERT_EQ(X509_REQ_set_pubkey(req.get(), key.get()), 1);
  ASSERT_GT(X509_REQ_sign(req.get(), key.get(), EVP_sha256()), 0);

  absl::StatusOr<CsrInfo> info = ParseCsr(WriteReq(req.get()));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->subject.common_name, "host-7");
  EXPECT_EQ(info->subject.organizational_unit, "agent");
  EXPECT_THAT(info->other_subject_fields, UnorderedElementsAre("C=US", "O=other", "CN=second"));
  EXPECT_TRUE(info->has_extensions);
}

// Validates that every parser refuses input over kMaxPemBytes and names the limit.
TEST_F(PkiTest, OversizedInputsRefused) {
  std::string cert = Issue(ServerOptions());
  std::string big = cert + std::string(kMaxPemBytes, '\n');
  std::vector<absl::Status> results = {
      ParseCertificate(big).status(),
      ParseCsr(big).status(),
      SplitCertificates(big).status(),
      Fingerprint(big).status(),
      PublicKeyPem(big).status(),
      VerifyCertificate(big, ca_cert_, kNow),
      CheckKeyMatches(leaf_key_, big),
      MakeCsr(big, {"a", "b"}).status(),
      IssueCertificate(big, ca_key_, *PublicKeyPem(leaf_key_), ServerOptions()).status(),
  };
  for (const absl::Status& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr(std::to_string(kMaxPemBytes))) << s;
  }
}

// Validates that garbage, truncated PEM and the wrong kind of PEM are refused with a message.
TEST_F(PkiTest, GarbageRefused) {
  std::string cert = Issue(ServerOptions());
  std::string truncated = cert.substr(0, cert.size() / 2) + "\n-----END CERTIFICATE-----\n";
  for (const std::string& bad : {std::string(), std::string("hello"), truncated, leaf_key_}) {
    absl::Status s = ParseCertificate(bad).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("not a PEM certificate"));
    EXPECT_EQ(SplitCertificates(bad).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(ParseCsr(cert).status().message(), HasSubstr("not a PEM certificate request"));
  EXPECT_EQ(PublicKeyPem(cert).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckKeyMatches("junk", cert).code(), absl::StatusCode::kInvalidArgument);
}

// Validates that a chain splits into its certificates, leaf first, and a broken block is refused.
TEST_F(PkiTest, SplitCertificates) {
  std::string leaf = Issue(ServerOptions());
  absl::StatusOr<std::vector<std::string>> chain =
      SplitCertificates("comment line\n" + leaf + ca_cert_);
  ASSERT_TRUE(chain.ok()) << chain.status();
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ(*Fingerprint((*chain)[0]), *Fingerprint(leaf));
  EXPECT_EQ(*Fingerprint((*chain)[1]), *Fingerprint(ca_cert_));
  std::string broken = leaf + ca_cert_.substr(0, ca_cert_.size() - 40) + "\n";
  EXPECT_EQ(SplitCertificates(broken).status().code(), absl::StatusCode::kInvalidArgument);
}

// Validates that the fingerprint is SHA-256 over the certificate's DER, computed independently.
TEST_F(PkiTest, FingerprintMatchesIndependentComputation) {
  std::string cert = Issue(ServerOptions());
  std::string der = DerOfPem(cert);
  ASSERT_FALSE(der.empty());
  EXPECT_EQ(*Fingerprint(cert), "sha256:" + Sha256Hex(der));
  EXPECT_EQ(ParseCertificate(cert)->fingerprint, *Fingerprint(cert));

  std::unique_ptr<X509, X509Free> x509(
      PEM_read_bio_X509(MemBio(cert).get(), nullptr, nullptr, nullptr));
  unsigned char* buf = nullptr;
  int n = i2d_X509(x509.get(), &buf);
  ASSERT_GT(n, 0);
  std::string i2d(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  OPENSSL_free(buf);
  EXPECT_EQ(i2d, der);
}

// Validates the accepted fingerprint spellings and that others are refused with the expected form.
TEST_F(PkiTest, NormalizeFingerprint) {
  const std::string hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  const std::string want = "sha256:" + hex;
  std::string colons;
  for (size_t i = 0; i < hex.size(); i += 2) {
    colons += (i ? ":" : "") + absl::AsciiStrToUpper(hex.substr(i, 2));
  }
  EXPECT_EQ(*NormalizeFingerprint(want), want);
  EXPECT_EQ(*NormalizeFingerprint("SHA256:" + absl::AsciiStrToUpper(hex)), want);
  EXPECT_EQ(*NormalizeFingerprint("SHA256:" + colons), want);
  EXPECT_EQ(*NormalizeFingerprint("  sha256:" + hex + "\n"), want);
  for (const std::string& bad :
       {std::string("xyz"), hex, "sha256:" + hex.substr(2), "sha256:" + hex + "00", "sha1:" + hex,
        "sha256:" + hex.substr(0, 63) + "g", "sha256:" + colons + ":",
        "sha256::" + colons.substr(1), std::string("sha256:")}) {
    absl::StatusOr<std::string> got = NormalizeFingerprint(bad);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(got.status().message(),
                HasSubstr("is not a CA fingerprint: expected sha256: followed by 64 hex digits"));
  }
  EXPECT_TRUE(absl::StartsWith(NormalizeFingerprint("xyz").status().message(), "\"xyz\" is"));
}

}  // namespace
}  // namespace kfleet::pki

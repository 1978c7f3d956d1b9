#include "common/pki.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/openssl_handles.h"
#include "common/status_macros.h"

namespace kfleet::pki {
namespace {

// Every OpenSSL handle of this file is owned through one of these (Free: openssl_handles.h).
using Asn1OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, Free<ASN1_OCTET_STRING_free>>;
using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, Free<BASIC_CONSTRAINTS_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Free<BN_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Free<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Free<GENERAL_NAMES_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Free<X509_NAME_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Free<X509_REQ_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Free<X509_STORE_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;
using Ia5StringPtr = std::unique_ptr<ASN1_IA5STRING, Free<ASN1_IA5STRING_free>>;
struct OpenSslFree {  // OPENSSL_free is a macro
  void operator()(void* p) const { OPENSSL_free(p); }
};
using OpenSslBytesPtr = std::unique_ptr<unsigned char, OpenSslFree>;
using OpenSslStringPtr = std::unique_ptr<char, OpenSslFree>;
struct ExtensionsFree {
  void operator()(STACK_OF(X509_EXTENSION) * p) const {
    sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free);
  }
};
using ExtensionsPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), ExtensionsFree>;

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", TakeOpenSslErrors()));
}

absl::Status Internal(absl::string_view what) {
  return absl::InternalError(absl::StrCat("OpenSSL: ", what, ": ", TakeOpenSslErrors()));
}

// Also clears errors left by earlier calls on this thread, so that messages name only ours.
absl::Status CheckSize(absl::string_view pem, absl::string_view what) {
  ERR_clear_error();
  if (pem.size() <= kMaxPemBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, " is ", pem.size(),
                                                 " bytes, over the limit of ", kMaxPemBytes,
                                                 " bytes for a PEM document"));
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

// Refuses to prompt on the terminal for the passphrase of an encrypted key.
int NoPassphrase(char*, int, int, void*) { return -1; }

absl::StatusOr<BioPtr> ReadBio(absl::string_view pem) {
  // An empty string_view may have no data pointer, which BIO_new_mem_buf refuses.
  BioPtr bio(BIO_new_mem_buf(pem.empty() ? "" : pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return Internal("BIO_new_mem_buf");
  return bio;
}

absl::StatusOr<KeyPtr> ReadPrivateKey(absl::string_view pem) {
  RETURN_IF_ERROR(CheckSize(pem, "the private key"));
  ASSIGN_OR_RETURN(BioPtr bio, ReadBio(pem));
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) return Invalid("not a PEM private key (unencrypted PKCS#8 or EC)");
  return key;
}

absl::StatusOr<KeyPtr> ReadPublicKey(absl::string_view pem) {
  RETURN_IF_ERROR(CheckSize(pem, "the public key"));
  ASSIGN_OR_RETURN(BioPtr bio, ReadBio(pem));
  KeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) return Invalid("not a PEM public key (SubjectPublicKeyInfo)");
  return key;
}

// `what` is "certificate" or "CA certificate".
absl::StatusOr<X509Ptr> ReadCertificate(absl::string_view pem, absl::string_view what) {
  RETURN_IF_ERROR(CheckSize(pem, absl::StrCat("the ", what)));
  ASSIGN_OR_RETURN(BioPtr bio, ReadBio(pem));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) return Invalid(absl::StrCat("not a PEM ", what));
  return cert;
}

// Every certificate of `pem`, in order; at least one.
absl::StatusOr<std::vector<X509Ptr>> ReadAllCertificates(absl::string_view pem,
                                                         absl::string_view what) {
  RETURN_IF_ERROR(CheckSize(pem, absl::StrCat("the ", what, " chain")));
  ASSIGN_OR_RETURN(BioPtr bio, ReadBio(pem));
  std::vector<X509Ptr> certs;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (cert == nullptr) break;
    certs.push_back(std::move(cert));
  }
  // Reading stops at the end with "no start line"; any other error is a malformed block.
  unsigned long e = ERR_peek_last_error();
  if (!certs.empty() && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
    return certs;
  }
  if (certs.empty()) return Invalid(absl::StrCat("not a PEM ", what));
  return Invalid(absl::StrCat("not a PEM ", what, " chain: certificate ", certs.size() + 1,
                              " cannot be read"));
}

// Runs `write` on a memory BIO and returns what it wrote.
template <typename Write>
absl::StatusOr<std::string> WritePem(absl::string_view what, Write write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || write(bio.get()) != 1) return Internal(absl::StrCat("writing ", what));
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<std::string> CertificatePem(X509* cert) {
  return WritePem("a certificate", [cert](BIO* b) { return PEM_write_bio_X509(b, cert); });
}

absl::StatusOr<std::string> PublicKeyPemOf(EVP_PKEY* key) {
  return WritePem("a public key", [key](BIO* b) { return PEM_write_bio_PUBKEY(b, key); });
}

// O=kfleet, OU (if any), CN.
absl::StatusOr<NamePtr> BuildName(const Subject& subject) {
  if (subject.common_name.empty()) {
    return absl::InvalidArgumentError("a subject needs a common name (CN)");
  }
  NamePtr name(X509_NAME_new());
  if (name == nullptr) return Internal("X509_NAME_new");
  auto add = [&](int nid, const std::string& value) {
    return X509_NAME_add_entry_by_NID(name.get(), nid, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  if (!add(NID_organizationName, kOrganization) ||
      (!subject.organizational_unit.empty() &&
       !add(NID_organizationalUnitName, subject.organizational_unit)) ||
      !add(NID_commonName, subject.common_name)) {
    return Invalid(absl::StrCat("subject CN=\"", absl::CHexEscape(subject.common_name), "\" OU=\"",
                                absl::CHexEscape(subject.organizational_unit),
                                "\" cannot be encoded"));
  }
  return name;
}

absl::StatusOr<std::string> EntryText(const X509_NAME_ENTRY* entry) {
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
  OpenSslBytesPtr owned(utf8);
  if (n < 0) return Invalid("a subject field is not valid text");
  return std::string(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
}

// The first `nid` field of `name`, or "".
absl::StatusOr<std::string> FirstField(const X509_NAME* name, int nid) {
  int i = X509_NAME_get_index_by_NID(name, nid, -1);
  if (i < 0) return std::string();
  return EntryText(X509_NAME_get_entry(name, i));
}

absl::StatusOr<BignumPtr> RandomSerial() {
  unsigned char bytes[16];
  bool zero = true;
  while (zero) {
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) return Internal("RAND_bytes");
    bytes[0] &= 0x7f;  // DER integers are signed: keep the serial positive
    for (unsigned char b : bytes) zero = zero && b == 0;
  }
  BignumPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (bn == nullptr) return Internal("BN_bin2bn");
  return bn;
}

absl::Status SetTime(ASN1_TIME* field, absl::Time t, absl::string_view what) {
  if (ASN1_TIME_set(field, absl::ToTimeT(t)) == nullptr) {
    return Invalid(absl::StrCat(what, " ", TimeText(t), " cannot be encoded"));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> GetTime(const ASN1_TIME* field, absl::string_view what) {
  struct tm tm = {};
  if (field == nullptr || ASN1_TIME_to_tm(field, &tm) != 1) {
    return Invalid(absl::StrCat("the certificate's ", what, " is not a valid time"));
  }
  return absl::FromCivil(absl::CivilSecond(tm.tm_year + 1900LL, tm.tm_mon + 1, tm.tm_mday,
                                           tm.tm_hour, tm.tm_min, tm.tm_sec),
                         absl::UTCTimeZone());
}

// A fresh certificate for `key` with everything common to the CA and the leaves.
absl::StatusOr<X509Ptr> NewCertificate(EVP_PKEY* key, const Subject& subject, absl::Time not_before,
                                       absl::Time not_after) {
  if (not_after <= not_before) {
    return absl::InvalidArgumentError(absl::StrCat("certificate validity ends (",
                                                   TimeText(not_after), ") before it starts (",
                                                   TimeText(not_before), ")"));
  }
  ASSIGN_OR_RETURN(NamePtr name, BuildName(subject));
  ASSIGN_OR_RETURN(BignumPtr serial, RandomSerial());
  X509Ptr cert(X509_new());
  if (cert == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_set_subject_name(cert.get(), name.get()) != 1 || X509_set_pubkey(cert.get(), key) != 1) {
    return Internal("building a certificate");
  }
  RETURN_IF_ERROR(SetTime(X509_getm_notBefore(cert.get()), not_before, "notBefore"));
  RETURN_IF_ERROR(SetTime(X509_getm_notAfter(cert.get()), not_after, "notAfter"));
  return cert;
}

// Adds the extension `nid` = `value` (openssl.cnf syntax, constant values only).
absl::Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Internal(absl::StrCat("adding extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

// subjectAltName from the names of `options`, built as GENERAL_NAMEs so that no text is parsed.
absl::Status AddSubjectAltName(X509* cert, const IssueOptions& options) {
  if (options.dns_names.empty() && options.ip_addresses.empty()) return absl::OkStatus();
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (names == nullptr) return Internal("GENERAL_NAMES_new");
  for (const std::string& dns : options.dns_names) {
    bool ok = !dns.empty();
    for (char c : dns) {
      ok = ok && (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '*' || c == '_');
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", absl::CHexEscape(dns), "\" is not a DNS name"));
    }
    GeneralNamePtr name(GENERAL_NAME_new());
    Ia5StringPtr text(ASN1_IA5STRING_new());
    if (name == nullptr || text == nullptr ||
        ASN1_STRING_set(text.get(), dns.data(), static_cast<int>(dns.size())) != 1) {
      return Internal("building a DNS name");
    }
    GENERAL_NAME_set0_value(name.get(), GEN_DNS, text.release());
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) return Internal("adding a DNS name");
    name.release();  // owned by `names` now
  }
  for (const std::string& ip : options.ip_addresses) {
    // c_str() would cut at a NUL: "127.0.0.1\0junk" must not pass as 127.0.0.1.
    Asn1OctetStringPtr octets(ip.find('\0') == std::string::npos ? a2i_IPADDRESS(ip.c_str())
                                                                 : nullptr);
    if (octets == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("\"", absl::CHexEscape(ip), "\" is not an IPv4 or IPv6 address"));
    }
    GeneralNamePtr name(GENERAL_NAME_new());
    if (name == nullptr) return Internal("GENERAL_NAME_new");
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, octets.release());
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) return Internal("adding an IP address");
    name.release();
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return Internal("adding subjectAltName");
  }
  return absl::OkStatus();
}

absl::Status Sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) return Internal("signing a certificate");
  return absl::OkStatus();
}

absl::StatusOr<std::string> FingerprintOf(X509* cert) {
  unsigned char* der = nullptr;
  int n = i2d_X509(cert, &der);
  OpenSslBytesPtr owned(der);
  if (n <= 0) return Internal("i2d_X509");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(der, static_cast<size_t>(n), digest, &size, EVP_sha256(), nullptr) != 1) {
    return Internal("SHA-256 of a certificate");
  }
  return absl::StrCat("sha256:", absl::BytesToHexString(absl::string_view(
                                     reinterpret_cast<const char*>(digest), size)));
}

absl::StatusOr<std::string> SerialText(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) return Invalid("the certificate's serial number is not an integer");
  OpenSslStringPtr hex(BN_bn2hex(bn.get()));
  if (hex == nullptr) return Internal("BN_bn2hex");
  absl::string_view digits = hex.get();
  bool negative = absl::ConsumePrefix(&digits, "-");
  size_t first = digits.find_first_not_of('0');
  if (first == absl::string_view::npos) return std::string("0");
  return absl::StrCat(negative ? "-" : "", absl::AsciiStrToLower(digits.substr(first)));
}

absl::Status ReadAltNames(X509* cert, CertInfo& info) {
  int critical = -1;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr)));
  if (names == nullptr) {
    if (critical == -1) return absl::OkStatus();  // no subjectAltName
    return Invalid("the certificate's subjectAltName is malformed or repeated");
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                  static_cast<size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      int length = ASN1_STRING_length(ip);
      char text[INET6_ADDRSTRLEN] = {};
      int family = length == 4 ? AF_INET : length == 16 ? AF_INET6 : AF_UNSPEC;
      if (family == AF_UNSPEC ||
          inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof(text)) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the certificate's subjectAltName has an IP address of ", length, " bytes"));
      }
      info.ip_addresses.push_back(text);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> IsCa(X509* cert) {
  int critical = -1;
  BasicConstraintsPtr bc(static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(cert, NID_basic_constraints, &critical, nullptr)));
  if (bc == nullptr && critical != -1) {
    return Invalid("the certificate's basicConstraints is malformed or repeated");
  }
  return bc != nullptr && bc->ca != 0;
}

// `text` quoted for a message, printable and cut short.
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 80;
  std::string quoted = absl::CHexEscape(text.substr(0, kMax));
  return absl::StrCat("\"", quoted, text.size() > kMax ? "...\"" : "\"");
}

}  // namespace

absl::StatusOr<std::string> GenerateKeyPem() {
  ERR_clear_error();
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (key == nullptr) return Internal("generating an EC P-256 key");
  return WritePem("a private key", [&key](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
}

absl::StatusOr<std::string> PublicKeyPem(absl::string_view private_key_pem) {
  ASSIGN_OR_RETURN(KeyPtr key, ReadPrivateKey(private_key_pem));
  return PublicKeyPemOf(key.get());
}

absl::StatusOr<std::string> MakeCaCertificate(absl::string_view ca_key_pem, const Subject& subject,
                                              absl::Time not_before, absl::Time not_after) {
  ASSIGN_OR_RETURN(KeyPtr key, ReadPrivateKey(ca_key_pem));
  ASSIGN_OR_RETURN(X509Ptr cert, NewCertificate(key.get(), subject, not_before, not_after));
  X509* c = cert.get();
  if (X509_set_issuer_name(c, X509_get_subject_name(c)) != 1) return Internal("issuer name");
  // The subjectKeyIdentifier comes first: the self-signed authorityKeyIdentifier copies it.
  RETURN_IF_ERROR(AddExtension(c, c, NID_basic_constraints, "critical,CA:TRUE"));
  RETURN_IF_ERROR(AddExtension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddExtension(c, c, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(c, c, NID_authority_key_identifier, "keyid:always"));
  RETURN_IF_ERROR(Sign(c, key.get()));
  return CertificatePem(c);
}

absl::StatusOr<std::string> IssueCertificate(absl::string_view ca_cert_pem,
                                             absl::string_view ca_key_pem,
                                             absl::string_view public_key_pem,
                                             const IssueOptions& options) {
  ASSIGN_OR_RETURN(X509Ptr ca, ReadCertificate(ca_cert_pem, "CA certificate"));
  ASSIGN_OR_RETURN(KeyPtr ca_key, ReadPrivateKey(ca_key_pem));
  ASSIGN_OR_RETURN(KeyPtr key, ReadPublicKey(public_key_pem));
  if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the CA key does not belong to the CA certificate");
  }
  if (X509_check_ca(ca.get()) == 0) {
    return absl::InvalidArgumentError(
        "the CA certificate is not a CA (no basicConstraints CA:TRUE)");
  }
  if (!options.server && !options.client) {
    return absl::InvalidArgumentError("a certificate needs serverAuth, clientAuth or both");
  }
  ASSIGN_OR_RETURN(X509Ptr cert, NewCertificate(key.get(), options.subject, options.not_before,
                                                options.not_after));
  X509* c = cert.get();
  if (X509_set_issuer_name(c, X509_get_subject_name(ca.get())) != 1) {
    return Internal("issuer name");
  }
  const char* usage = options.server && options.client ? "serverAuth,clientAuth"
                      : options.server                 ? "serverAuth"
                                                       : "clientAuth";
  RETURN_IF_ERROR(AddExtension(c, ca.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(c, ca.get(), NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(AddExtension(c, ca.get(), NID_ext_key_usage, usage));
  RETURN_IF_ERROR(AddExtension(c, ca.get(), NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(c, ca.get(), NID_authority_key_identifier, "keyid:always"));
  RETURN_IF_ERROR(AddSubjectAltName(c, options));
  RETURN_IF_ERROR(Sign(c, ca_key.get()));
  return CertificatePem(c);
}

absl::StatusOr<std::string> MakeCsr(absl::string_view key_pem, const Subject& subject) {
  ASSIGN_OR_RETURN(KeyPtr key, ReadPrivateKey(key_pem));
  ASSIGN_OR_RETURN(NamePtr name, BuildName(subject));
  ReqPtr req(X509_REQ_new());
  if (req == nullptr || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), name.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 ||
      X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return Internal("building a CSR");
  }
  return WritePem("a CSR", [&req](BIO* b) { return PEM_write_bio_X509_REQ(b, req.get()); });
}

absl::StatusOr<CsrInfo> ParseCsr(absl::string_view csr_pem) {
  RETURN_IF_ERROR(CheckSize(csr_pem, "the CSR"));
  ASSIGN_OR_RETURN(BioPtr bio, ReadBio(csr_pem));
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassphrase, nullptr));
  if (req == nullptr) return Invalid("not a PEM certificate request (CSR)");
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr) return Invalid("the CSR's public key cannot be read");
  if (X509_REQ_verify(req.get(), key) != 1) {
    return Invalid("the CSR's signature does not verify");
  }
  CsrInfo info;
  const X509_NAME* name = X509_REQ_get_subject_name(req.get());
  bool seen_cn = false, seen_ou = false, seen_o = false;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    ASSIGN_OR_RETURN(std::string value, EntryText(entry));
    const ASN1_OBJECT* object = X509_NAME_ENTRY_get_object(entry);
    int nid = OBJ_obj2nid(object);
    // Only the first CN and OU count; a second one is as suspect as any other field.
    if (nid == NID_commonName && !seen_cn) {
      seen_cn = true;
      info.subject.common_name = std::move(value);
    } else if (nid == NID_organizationalUnitName && !seen_ou) {
      seen_ou = true;
      info.subject.organizational_unit = std::move(value);
    } else if (nid == NID_organizationName && !seen_o && value == kOrganization) {
      seen_o = true;
    } else {
      char oid[80];
      const char* short_name = nid == NID_undef ? nullptr : OBJ_nid2sn(nid);
      if (short_name == nullptr) {
        OBJ_obj2txt(oid, sizeof(oid), object, /*no_name=*/1);
        short_name = oid;
      }
      info.other_subject_fields.push_back(absl::StrCat(short_name, "=", value));
    }
  }
  ExtensionsPtr extensions(X509_REQ_get_extensions(req.get()));
  info.has_extensions = (extensions != nullptr && sk_X509_EXTENSION_num(extensions.get()) > 0) ||
                        X509_REQ_get_attr_by_NID(req.get(), NID_ext_req, -1) >= 0 ||
                        X509_REQ_get_attr_by_NID(req.get(), NID_ms_ext_req, -1) >= 0;
  ERR_clear_error();  // a malformed extension request is reported as has_extensions
  ASSIGN_OR_RETURN(info.public_key_pem, PublicKeyPemOf(key));
  return info;
}

absl::StatusOr<CertInfo> ParseCertificate(absl::string_view cert_pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificate(cert_pem, "certificate"));
  CertInfo info;
  ASSIGN_OR_RETURN(info.serial, SerialText(X509_get0_serialNumber(cert.get())));
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  ASSIGN_OR_RETURN(info.subject.common_name, FirstField(subject, NID_commonName));
  ASSIGN_OR_RETURN(info.subject.organizational_unit,
                   FirstField(subject, NID_organizationalUnitName));
  ASSIGN_OR_RETURN(info.organization, FirstField(subject, NID_organizationName));
  ASSIGN_OR_RETURN(info.issuer_common_name,
                   FirstField(X509_get_issuer_name(cert.get()), NID_commonName));
  ASSIGN_OR_RETURN(info.not_before, GetTime(X509_get0_notBefore(cert.get()), "notBefore"));
  ASSIGN_OR_RETURN(info.not_after, GetTime(X509_get0_notAfter(cert.get()), "notAfter"));
  RETURN_IF_ERROR(ReadAltNames(cert.get(), info));
  ASSIGN_OR_RETURN(info.is_ca, IsCa(cert.get()));
  ASSIGN_OR_RETURN(info.fingerprint, FingerprintOf(cert.get()));
  return info;
}

absl::StatusOr<std::vector<std::string>> SplitCertificates(absl::string_view pem) {
  ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ReadAllCertificates(pem, "certificate"));
  std::vector<std::string> pems;
  for (const X509Ptr& cert : certs) {
    ASSIGN_OR_RETURN(std::string one, CertificatePem(cert.get()));
    pems.push_back(std::move(one));
  }
  return pems;
}

absl::StatusOr<std::string> Fingerprint(absl::string_view cert_pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificate(cert_pem, "certificate"));
  return FingerprintOf(cert.get());
}

absl::Status VerifyCertificate(absl::string_view cert_pem, absl::string_view ca_pem,
                               absl::Time at) {
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificate(cert_pem, "certificate"));
  ASSIGN_OR_RETURN(std::vector<X509Ptr> cas, ReadAllCertificates(ca_pem, "CA certificate"));
  StorePtr store(X509_STORE_new());
  if (store == nullptr) return Internal("X509_STORE_new");
  for (const X509Ptr& ca : cas) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) return Internal("X509_STORE_add_cert");
  }
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr || X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return Internal("X509_STORE_CTX_init");
  }
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), absl::ToTimeT(at));
  if (X509_verify_cert(ctx.get()) == 1) return absl::OkStatus();
  int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  // Depth 0 is the certificate itself; above it, the CA (expired, say) is what failed.
  bool leaf = X509_STORE_CTX_get_error_depth(ctx.get()) == 0;
  return absl::InvalidArgumentError(
      absl::StrCat(leaf ? "the certificate does not verify against the CA"
                        : "the CA certificate fails verification",
                   " at ", TimeText(at), ": ", X509_verify_cert_error_string(error)));
}

absl::Status CheckKeyMatches(absl::string_view key_pem, absl::string_view cert_pem) {
  ASSIGN_OR_RETURN(KeyPtr key, ReadPrivateKey(key_pem));
  ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificate(cert_pem, "certificate"));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the private key does not belong to the certificate");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> NormalizeFingerprint(absl::string_view text) {
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  bool ok = absl::StartsWithIgnoreCase(rest, "sha256:");
  rest.remove_prefix(ok ? 7 : 0);
  // Either 64 hex digits, or 32 pairs of them with colons between.
  bool colons = rest.find(':') != absl::string_view::npos;
  ok = ok && rest.size() == (colons ? 95u : 64u);
  std::string hex;
  for (size_t i = 0; ok && i < rest.size(); ++i) {
    if (colons && i % 3 == 2) {
      ok = rest[i] == ':';
    } else {
      ok = absl::ascii_isxdigit(rest[i]);
      hex.push_back(absl::ascii_tolower(rest[i]));
    }
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text),
                     " is not a CA fingerprint: expected sha256: followed by 64 hex digits, "
                     "as kctl token create prints it"));
  }
  return absl::StrCat("sha256:", hex);
}

}  // namespace kfleet::pki

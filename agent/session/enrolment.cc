#include "agent/session/enrolment.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "common/tls_probe.h"
#include "kfleet/v1/security.grpc.pb.h"

namespace kfleet::agent {
namespace {

constexpr absl::Duration kRpcTimeout = absl::Seconds(30);
constexpr absl::Duration kRetryMin = absl::Seconds(1);
constexpr absl::Duration kRetryMax = absl::Seconds(30);

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

bool Retryable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
}

// The CA to trust: the given file, or the certificate the controller presents whose
// fingerprint is the given one.
absl::StatusOr<std::string> FindCa(const EnrolmentOptions& o) {
  if (!o.ca_cert_file.empty()) {
    ASSIGN_OR_RETURN(std::string pem, ReadFile(o.ca_cert_file, pki::kMaxPemBytes));
    ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCertificate(pem));
    if (!o.ca_fingerprint.empty()) {
      ASSIGN_OR_RETURN(std::string want, pki::NormalizeFingerprint(o.ca_fingerprint));
      if (info.fingerprint != want) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--ca-cert ", o.ca_cert_file, " has fingerprint ", info.fingerprint, ", not ", want));
      }
    }
    return pem;
  }
  if (o.ca_fingerprint.empty()) {
    return absl::InvalidArgumentError(
        "to enrol, the agent must know the controller's CA: give --ca-fingerprint sha256:HEX (as "
        "kctl token create prints it) or --ca-cert FILE");
  }
  ASSIGN_OR_RETURN(std::string want, pki::NormalizeFingerprint(o.ca_fingerprint));
  ASSIGN_OR_RETURN(std::vector<std::string> chain, FetchServerChain(o.controller, kRpcTimeout));
  absl::StatusOr<std::string> ca = FindCaByFingerprint(chain, want);
  if (!ca.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("the controller at ", o.controller,
                     " is not the one the token was made for: ", ca.status().message()));
  }
  return ca;
}

absl::StatusOr<std::string> LoadToken(const EnrolmentOptions& o) {
  if (!o.token.empty()) return o.token;
  if (!o.token_file.empty()) {
    ASSIGN_OR_RETURN(std::string t, ReadFile(o.token_file, 4096));
    return std::string(absl::StripAsciiWhitespace(t));
  }
  return absl::FailedPreconditionError(
      "this agent has no certificate yet: start it once with --token TOKEN (from `kctl token "
      "create` on the controller) and --ca-fingerprint sha256:HEX, or with --insecure for a "
      "plaintext controller on loopback");
}

absl::StatusOr<v1::EnrolResponse> EnrolOnce(const EnrolmentOptions& o, const std::string& key_pem,
                                            const std::string& token) {
  ASSIGN_OR_RETURN(std::string ca_pem, FindCa(o));
  ASSIGN_OR_RETURN(std::string csr, pki::MakeCsr(key_pem, {o.host_id, ""}));
  TransportSecurity bootstrap;
  bootstrap.ca_pem = ca_pem;
  bootstrap.server_name = o.server_name;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, MakeChannel(bootstrap, o.controller));
  auto stub = v1::EnrolService::NewStub(channel);
  v1::EnrolRequest req;
  req.set_token(token);
  req.set_csr_pem(csr);
  req.set_name(o.name);
  for (const auto& [k, v] : o.labels) (*req.mutable_labels())[k] = v;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  v1::EnrolResponse resp;
  grpc::Status s = stub->Enrol(&ctx, req, &resp);
  if (!s.ok()) return ToAbslStatus(s);
  if (resp.ca_pem().empty()) resp.set_ca_pem(ca_pem);
  return resp;
}

}  // namespace

AgentPkiFiles PkiFiles(const std::string& state_dir) {
  return {state_dir + "/pki/agent.key", state_dir + "/pki/agent.crt", state_dir + "/pki/ca.crt"};
}

absl::StatusOr<TransportSecurity> EnsureEnrolled(const EnrolmentOptions& o) {
  AgentPkiFiles files = PkiFiles(o.state_dir);
  TransportSecurity security;
  security.key_file = files.key;
  security.cert_file = files.cert;
  security.ca_file = files.ca;
  security.server_name = o.server_name;
  if (Exists(files.cert) && Exists(files.key) && Exists(files.ca)) {
    ASSIGN_OR_RETURN(std::string pem, ReadFile(files.cert, pki::kMaxPemBytes));
    ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCertificate(pem));
    if (info.subject.common_name != o.host_id) {
      return absl::FailedPreconditionError(absl::StrCat(
          files.cert, " is for host id ", info.subject.common_name, ", this agent is ", o.host_id,
          ": remove ", o.state_dir, "/pki and enrol again with a new token"));
    }
    if (info.not_after > absl::Now()) return security;
    LogWarning(absl::StrCat("the agent's certificate expired at ", absl::FormatTime(info.not_after),
                            ": enrolling again"));
  }
  ASSIGN_OR_RETURN(std::string token, LoadToken(o));
  RETURN_IF_ERROR(MakeDirs(o.state_dir + "/pki"));
  if (::chmod((o.state_dir + "/pki").c_str(), 0700) != 0) {
    return ErrnoStatus(absl::StrCat("chmod ", o.state_dir, "/pki"), errno);
  }
  std::string key_pem;
  if (Exists(files.key)) {
    ASSIGN_OR_RETURN(key_pem, ReadFile(files.key, pki::kMaxPemBytes));
  } else {
    ASSIGN_OR_RETURN(key_pem, pki::GenerateKeyPem());
    RETURN_IF_ERROR(WriteFileAtomic(files.key, key_pem));
  }
  absl::Time began = absl::Now();
  absl::Duration wait = kRetryMin;
  while (true) {
    absl::StatusOr<v1::EnrolResponse> resp = EnrolOnce(o, key_pem, token);
    if (resp.ok()) {
      RETURN_IF_ERROR(WriteFileAtomic(files.ca, resp->ca_pem()));
      RETURN_IF_ERROR(WriteFileAtomic(files.cert, resp->certificate_pem()));
      LogInfo(absl::StrCat("enrolled with ", o.controller, " as ", resp->name(), " (",
                           resp->host_id(), ") in ", absl::FormatDuration(absl::Now() - began)));
      return security;
    }
    if (!Retryable(resp.status()) || absl::Now() - began > o.give_up_after) {
      return absl::Status(
          resp.status().code(),
          absl::StrCat("enrolment with ", o.controller, " refused: ", resp.status().message()));
    }
    LogWarning(absl::StrCat("enrolment with ", o.controller, ": ", resp.status().message(),
                            "; retrying in ", absl::FormatDuration(wait)));
    absl::SleepFor(wait);
    wait = std::min(wait * 2, kRetryMax);
  }
}

CertificateRenewer::CertificateRenewer(std::string controller, TransportSecurity security,
                                       std::string state_dir)
    : controller_(std::move(controller)),
      security_(std::move(security)),
      state_dir_(std::move(state_dir)) {}

CertificateRenewer::~CertificateRenewer() { Stop(); }

void CertificateRenewer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void CertificateRenewer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<absl::Time> CertificateRenewer::RenewNow() {
  AgentPkiFiles files = PkiFiles(state_dir_);
  ASSIGN_OR_RETURN(std::string key_pem, ReadFile(files.key, pki::kMaxPemBytes));
  ASSIGN_OR_RETURN(std::string cert_pem, ReadFile(files.cert, pki::kMaxPemBytes));
  ASSIGN_OR_RETURN(pki::CertInfo current, pki::ParseCertificate(cert_pem));
  // The same key: the files a channel watches then always match, whichever it reads first.
  ASSIGN_OR_RETURN(std::string csr, pki::MakeCsr(key_pem, {current.subject.common_name, ""}));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, MakeChannel(security_, controller_));
  auto stub = v1::EnrolService::NewStub(channel);
  v1::RenewRequest req;
  req.set_csr_pem(csr);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout));
  v1::EnrolResponse resp;
  grpc::Status s = stub->Renew(&ctx, req, &resp);
  if (!s.ok()) return ToAbslStatus(s);
  RETURN_IF_ERROR(pki::CheckKeyMatches(key_pem, resp.certificate_pem()));
  RETURN_IF_ERROR(WriteFileAtomic(files.cert, resp.certificate_pem()));
  ASSIGN_OR_RETURN(pki::CertInfo renewed, pki::ParseCertificate(resp.certificate_pem()));
  LogInfo(absl::StrCat("certificate renewed: serial ", renewed.serial, ", valid until ",
                       absl::FormatTime(renewed.not_after)));
  return renewed.not_after;
}

void CertificateRenewer::Loop() {
  absl::Duration retry = absl::Seconds(10);
  while (true) {
    absl::Time due = absl::Now() + absl::Minutes(1);
    if (absl::StatusOr<std::string> pem = ReadFile(PkiFiles(state_dir_).cert, pki::kMaxPemBytes);
        pem.ok()) {
      if (absl::StatusOr<pki::CertInfo> info = pki::ParseCertificate(*pem); info.ok()) {
        due = info->not_before + (info->not_after - info->not_before) * 2 / 3;
      }
    }
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                           std::max(due - absl::Now(), absl::ZeroDuration()));
      if (stopping_) return;
    }
    if (absl::Now() < due) continue;
    absl::StatusOr<absl::Time> renewed = RenewNow();
    if (renewed.ok()) {
      retry = absl::Seconds(10);
      continue;
    }
    LogWarning(absl::StrCat("certificate renewal failed: ", renewed.status().message(),
                            "; trying again in ", absl::FormatDuration(retry)));
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), retry);
    if (stopping_) return;
    retry = std::min(retry * 2, absl::Minutes(10));
  }
}

}  // namespace kfleet::agent

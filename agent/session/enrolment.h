// The agent's identity: its key and certificate in STATE_DIR/pki, got once by enrolling with a
// token (a CSR for its host id, sent in EnrolService.Enrol) and renewed before they expire.
#ifndef KFLEET_AGENT_SESSION_ENROLMENT_H_
#define KFLEET_AGENT_SESSION_ENROLMENT_H_

#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/credentials.h"

namespace kfleet::agent {

struct EnrolmentOptions {
  std::string controller;  // HOST:PORT
  std::string state_dir;
  std::string host_id;
  std::string name;  // may be empty
  std::map<std::string, std::string> labels;
  std::string token;           // or:
  std::string token_file;      // read only when enrolling
  std::string ca_cert_file;    // the controller's CA, or:
  std::string ca_fingerprint;  // sha256:HEX of it, checked against what the controller presents
  std::string server_name;     // TLS name override
  // How long to keep trying while the controller cannot be reached.
  absl::Duration give_up_after = absl::Hours(24 * 365);
};

// The files of an enrolled agent under STATE_DIR/pki.
struct AgentPkiFiles {
  std::string key;
  std::string cert;
  std::string ca;
};
AgentPkiFiles PkiFiles(const std::string& state_dir);

// TLS settings for the agent's channels: enrols first when the state dir holds no certificate
// (retrying while the controller is unreachable; a refusal ends it with the controller's reason
// and what to do). Blocks until done.
absl::StatusOr<TransportSecurity> EnsureEnrolled(const EnrolmentOptions& options);

// Renews the agent's certificate at two thirds of its lifetime (EnrolService.Renew over the
// agent's own channel), writing the new one in place: new connections use it, the current
// session goes on. Start/Stop; the wait is interruptible.
class CertificateRenewer {
 public:
  CertificateRenewer(std::string controller, TransportSecurity security, std::string state_dir);
  ~CertificateRenewer();

  void Start();
  void Stop();
  // Renews now (tests, and the loop). Returns the new certificate's expiry.
  absl::StatusOr<absl::Time> RenewNow();

 private:
  void Loop();

  const std::string controller_;
  const TransportSecurity security_;
  const std::string state_dir_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SESSION_ENROLMENT_H_

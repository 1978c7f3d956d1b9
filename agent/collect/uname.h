// The kernel's identity behind node_uname_info: uname(2) behind a seam, so that tests of the
// collector do not depend on the machine they run on.
#ifndef KFLEET_AGENT_COLLECT_UNAME_H_
#define KFLEET_AGENT_COLLECT_UNAME_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

// struct utsname, field by field: sysname "Linux", release "6.1.0-27-amd64", version "#1 SMP
// PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)", machine "x86_64", nodename (the host name of
// the caller's UTS namespace) and domainname (NIS domain, "(none)" when unset).
struct Uname {
  std::string sysname;
  std::string release;
  std::string version;
  std::string machine;
  std::string nodename;
  std::string domainname;
};

// The running kernel's identity; must be safe to call from several threads at once.
using UnameFunc = std::function<absl::StatusOr<Uname>()>;

// uname(2). Errors carry errno's code.
absl::StatusOr<Uname> RealUname();

// node_uname_info{sysname,release,version,machine,nodename,domainname} 1, labelled as
// node_exporter's uname collector labels it.
void AppendUnameSample(const Uname& uname, std::vector<kfleet::v1::MetricSample>* out);

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_COLLECT_UNAME_H_

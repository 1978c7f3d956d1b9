#include "agent/collect/uname.h"

#include <sys/utsname.h>

#include <cerrno>

#include "common/files.h"

namespace kfleet::agent {

absl::StatusOr<Uname> RealUname() {
  struct utsname u;
  if (::uname(&u) != 0) return ErrnoStatus("uname", errno);
  return Uname{u.sysname, u.release, u.version, u.machine, u.nodename, u.domainname};
}

void AppendUnameSample(const Uname& uname, std::vector<kfleet::v1::MetricSample>* out) {
  kfleet::v1::MetricSample& s = out->emplace_back();
  s.set_name("node_uname_info");
  s.set_value(1);
  auto& labels = *s.mutable_labels();
  labels["sysname"] = uname.sysname;
  labels["release"] = uname.release;
  labels["version"] = uname.version;
  labels["machine"] = uname.machine;
  labels["nodename"] = uname.nodename;
  labels["domainname"] = uname.domainname;
}

}  // namespace kfleet::agent

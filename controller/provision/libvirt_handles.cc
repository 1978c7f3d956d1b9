#include "controller/provision/libvirt_handles.h"

#include <libvirt/virterror.h>
#include <signal.h>

#include "absl/strings/str_cat.h"

namespace kfleet::controller::provision {
namespace {

// libvirt prints every error on stderr unless a handler takes it; ours drops it because each
// failing call turns virGetLastError into a status.
void QuietErrors(void* /*user_data*/, virErrorPtr /*error*/) {}

absl::StatusCode CodeFor(int number) {
  switch (number) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_DOMAIN_METADATA:
      return absl::StatusCode::kNotFound;
    case VIR_ERR_DOM_EXIST:
      return absl::StatusCode::kAlreadyExists;
    case VIR_ERR_OPERATION_INVALID:
      return absl::StatusCode::kFailedPrecondition;
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_INVALID_ARG:
    case VIR_ERR_CONFIG_UNSUPPORTED:
      return absl::StatusCode::kInvalidArgument;
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_RPC:
    case VIR_ERR_SYSTEM_ERROR:
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_OPERATION_TIMEOUT:
    case VIR_ERR_AGENT_UNRESPONSIVE:
      return absl::StatusCode::kUnavailable;
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_ACCESS_DENIED:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status LibvirtError(absl::string_view guest, absl::string_view operation) {
  virErrorPtr err = virGetLastError();
  std::string prefix =
      guest.empty() ? std::string(operation) : absl::StrCat("guest ", guest, ": ", operation);
  if (err == nullptr || err->message == nullptr) {
    return absl::InternalError(absl::StrCat(prefix, ": libvirt failed without saying why"));
  }
  return absl::Status(CodeFor(err->code), absl::StrCat(prefix, ": ", err->message));
}

absl::StatusOr<ConnectHandle> OpenConnection(const std::string& uri) {
  if (virInitialize() != 0) return absl::InternalError("libvirt: virInitialize failed");
  // libvirt writes to its socket without MSG_NOSIGNAL: once libvirtd restarts, the next call
  // would kill the process with SIGPIPE instead of failing. Only a default disposition is
  // changed; a handler the program installed stays.
  struct sigaction old_action;
  if (::sigaction(SIGPIPE, nullptr, &old_action) == 0 && old_action.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
  virSetErrorFunc(nullptr, QuietErrors);
  ConnectHandle conn(virConnectOpen(uri.c_str()));
  if (conn == nullptr) {
    absl::Status s = LibvirtError("", absl::StrCat("connect to libvirt at ", uri));
    return absl::UnavailableError(absl::StrCat(
        s.message(), " (is libvirtd running? scripts/libvirt.sh: kfleet_start_libvirtd)"));
  }
  virConnSetErrorFunc(conn.get(), nullptr, QuietErrors);
  return conn;
}

absl::StatusOr<DomainHandle> LookupDomain(virConnectPtr conn, const std::string& name) {
  DomainHandle dom(virDomainLookupByName(conn, name.c_str()));
  if (dom == nullptr) {
    virErrorPtr err = virGetLastError();
    if (err != nullptr && err->code == VIR_ERR_NO_DOMAIN) {
      return absl::NotFoundError(absl::StrCat("guest ", name, " does not exist"));
    }
    return LibvirtError(name, "look up");
  }
  return dom;
}

}  // namespace kfleet::controller::provision

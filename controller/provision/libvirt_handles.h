// Owned libvirt handles and libvirt errors as absl statuses.
#ifndef KFLEET_CONTROLLER_PROVISION_LIBVIRT_HANDLES_H_
#define KFLEET_CONTROLLER_PROVISION_LIBVIRT_HANDLES_H_

#include <libvirt/libvirt.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kfleet::controller::provision {

struct ConnectCloser {
  void operator()(virConnectPtr conn) const { virConnectClose(conn); }
};
struct DomainFreer {
  void operator()(virDomainPtr dom) const { virDomainFree(dom); }
};
using ConnectHandle = std::unique_ptr<virConnect, ConnectCloser>;
using DomainHandle = std::unique_ptr<virDomain, DomainFreer>;

// Opens a read-write connection to `uri` and keeps libvirt from printing its errors on stderr
// (they come back as statuses instead). Process-wide effects: libvirt's default error handler is
// replaced by a silent one, and SIGPIPE, if still at its default, is ignored (libvirt needs that
// to survive a libvirtd restart). Unavailable, naming the uri, if libvirtd does not answer.
absl::StatusOr<ConnectHandle> OpenConnection(const std::string& uri);

// The domain called `name`: NotFound if there is none.
absl::StatusOr<DomainHandle> LookupDomain(virConnectPtr conn, const std::string& name);

// The calling thread's last libvirt error as a status: "guest NAME: OPERATION: message", coded
// from libvirt's error number (no domain: NotFound, invalid operation: FailedPrecondition, XML
// and argument errors: InvalidArgument, connection and RPC errors: Unavailable).
absl::Status LibvirtError(absl::string_view guest, absl::string_view operation);

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_LIBVIRT_HANDLES_H_

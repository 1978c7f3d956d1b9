// The controller's Prometheus endpoint: GET /metrics over plain HTTP (DESIGN.md, "Processes and
// ports": :7401 by default).
#ifndef KFLEET_CONTROLLER_METRICS_METRICS_SERVER_H_
#define KFLEET_CONTROLLER_METRICS_METRICS_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace kfleet::controller {

// Serves the collectables' families at /metrics, in the Prometheus text format, from two threads
// of its own; their Collect() is called from those threads. The endpoint is plaintext and
// unauthenticated, as Prometheus scrapes expect: it shows host names, labels and command counts,
// so bind it to an address only the monitoring network reaches.
class MetricsServer {
 public:
  // Starts serving on `listen`: "IP:PORT", ":PORT" (all IPv4 interfaces), "localhost:PORT" or
  // "[IPv6]:PORT" (only where civetweb was built with IPv6, which Debian's is not); port 0 picks a
  // free port (see port()). A collectable that has expired is skipped. Besides theirs, /metrics
  // carries prometheus-cpp's exposer_* metrics about the scrapes themselves. Errors:
  // InvalidArgument for a malformed address, Unavailable when it cannot be bound (port in use,
  // address not on this host).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen, std::vector<std::weak_ptr<prometheus::Collectable>> collectables);

  // Stops serving; waits for scrapes in progress. Takes up to 2 s: civetweb's accept loop checks
  // for a stop every 2 s.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port bound: the one asked for, or the one picked for port 0.
  int port() const { return port_; }

 private:
  MetricsServer(std::unique_ptr<prometheus::Exposer> exposer, int port);

  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_;
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_METRICS_METRICS_SERVER_H_

// A simulated host's metric batch with node_exporter's names and label sets, for tests and
// bench/metrics_exposition: meminfo (50 fields), vmstat (7), PSI (5), load (3), CPU (2 cpus x 8
// modes), disks (2 x 11), filesystems (2 x 6): 115 samples.
#ifndef KFLEET_CONTROLLER_METRICS_FAKE_NODE_SAMPLES_H_
#define KFLEET_CONTROLLER_METRICS_FAKE_NODE_SAMPLES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kfleet/v1/common.pb.h"

namespace kfleet::controller {

// The batch of host number `host` at sampling round `round`: counters grow with `round`, values
// differ between hosts. Deterministic.
std::vector<v1::MetricSample> FakeNodeSamples(int host, int64_t round);

// "guest-0042" style names and the labels a pool gives its guests (pool, role).
std::string FakeHostName(int host);
std::map<std::string, std::string> FakeHostLabels(int host);

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_METRICS_FAKE_NODE_SAMPLES_H_

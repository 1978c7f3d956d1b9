// A Prometheus file_sd list of the hosts that serve their own /metrics (DESIGN.md, "Metrics and
// events"), for a Prometheus that can reach them directly:
//   scrape_configs: [{job_name: kfleet-hosts, file_sd_configs: [{files: [<path>]}]}]
#ifndef KFLEET_CONTROLLER_METRICS_FILE_SD_H_
#define KFLEET_CONTROLLER_METRICS_FILE_SD_H_

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace kfleet::controller {

struct SdHost {
  std::string name;
  std::map<std::string, std::string> labels;  // the host's labels (pool, role...)
  std::string metrics_address;                // HOST:PORT of its /metrics; empty: none
};

// The file's content: one target group per host with a metrics address, sorted by name, labelled
// as FleetCollector labels its series (TargetLabels: instance and host = name, sanitized host
// labels), so both ways of scraping a host give the same `instance`. "[]" for none.
std::string FileSdJson(const std::vector<SdHost>& hosts);

// Writes FileSdJson to one path. Thread-safe.
class FileSdWriter {
 public:
  // `path` should end in .json (what file_sd_configs usually match); its directory must exist.
  explicit FileSdWriter(std::string path) : path_(std::move(path)) {}

  // Replaces the file if its content would change (compared with what this writer last wrote, or
  // at first with the file on disk), atomically: Prometheus never reads half a list. The file is
  // mode 0644, for a Prometheus running as another user. Returns whether it wrote.
  absl::StatusOr<bool> Write(const std::vector<SdHost>& hosts);

 private:
  const std::string path_;
  absl::Mutex mu_;
  bool known_ ABSL_GUARDED_BY(mu_) = false;  // whether `written_` is the file's content
  std::string written_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kfleet::controller

#endif  // KFLEET_CONTROLLER_METRICS_FILE_SD_H_

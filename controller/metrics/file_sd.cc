#include "controller/metrics/file_sd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "controller/metrics/label_names.h"

namespace kfleet::controller {
namespace {

// common/files.h's WriteFileAtomic creates 0600 files (right for credentials); Prometheus runs as
// another user and needs to read this one. Same steps otherwise: temporary, fsync, rename, fsync
// of the directory. The temporary does not end in .json, so file_sd never picks it up.
absl::Status WriteReadable(const std::string& path, const std::string& data) {
  std::string tmp = absl::StrCat(path, ".tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(absl::StrCat("create ", tmp), errno);
  absl::Status status;
  if (::fchmod(fd, 0644) != 0) status = ErrnoStatus(absl::StrCat("chmod ", tmp), errno);
  size_t done = 0;
  while (status.ok() && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) status = ErrnoStatus(absl::StrCat("write ", tmp), errno);
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoStatus(absl::StrCat("fsync ", tmp), errno);
  ::close(fd);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoStatus(absl::StrCat("rename ", tmp, " to ", path), errno);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  size_t slash = path.rfind('/');
  return SyncDir(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash));
}

}  // namespace

std::string FileSdJson(const std::vector<SdHost>& hosts) {
  std::vector<const SdHost*> listed;
  for (const SdHost& host : hosts) {
    if (!host.metrics_address.empty()) listed.push_back(&host);
  }
  std::sort(listed.begin(), listed.end(),
            [](const SdHost* a, const SdHost* b) { return a->name < b->name; });
  nlohmann::json groups = nlohmann::json::array();
  for (const SdHost* host : listed) {
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [name, value] : TargetLabels(host->name, host->labels)) labels[name] = value;
    nlohmann::json group = nlohmann::json::object();
    group["targets"] = nlohmann::json::array({host->metrics_address});
    group["labels"] = std::move(labels);
    groups.push_back(std::move(group));
  }
  return groups.dump(2) + "\n";
}

absl::StatusOr<bool> FileSdWriter::Write(const std::vector<SdHost>& hosts) {
  std::string content = FileSdJson(hosts);
  absl::MutexLock lock(&mu_);
  if (!known_) {
    // After a restart the file usually holds what we would write: leave it (and Prometheus) be.
    absl::StatusOr<std::string> on_disk = ReadFile(path_);
    known_ = on_disk.ok();
    if (known_) written_ = *std::move(on_disk);
  }
  if (known_ && written_ == content) return false;
  absl::Status status = WriteReadable(path_, content);
  if (!status.ok()) {
    known_ = false;
    return absl::Status(status.code(), absl::StrCat("file_sd: ", status.message()));
  }
  known_ = true;
  written_ = std::move(content);
  return true;
}

}  // namespace kfleet::controller

// Fuzz target for the /proc parsers: the first byte chooses the parser (one of the characters of
// kSelectors; any other byte picks by its value modulo their number), the rest is the file's
// content. Beyond not crashing, every sample must be one the controller accepts: a name the metric
// table knows, and label values that are valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"
#include "agent/collect/procfs.h"
#include "agent/collect/procfs_text.h"
#include "common/metric_names.h"

namespace {

using kfleet::agent::MetricSamples;

// m meminfo, v vmstat, c/M/i pressure cpu/memory/io, l loadavg, s stat, d diskstats,
// f mounts (+ filesystem samples), b boot_id, o the oom_kill field alone.
constexpr char kSelectors[] = "mvcMilsdfbo";

void Check(const MetricSamples& samples) {
  for (const kfleet::v1::MetricSample& s : samples) {
    if (kfleet::FindHostMetric(s.name()) == nullptr) std::abort();
    for (const auto& [key, value] : s.labels()) {
      if (!kfleet::agent::procfs_internal::IsLabelValue(value)) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* found = std::strchr(kSelectors, static_cast<char>(data[0]));
  size_t n = sizeof(kSelectors) - 1;
  char selector = (found != nullptr && data[0] != 0) ? data[0] : kSelectors[data[0] % n];
  absl::string_view content(reinterpret_cast<const char*>(data + 1), size - 1);
  MetricSamples out;
  switch (selector) {
    case 'm':
      (void)kfleet::agent::ParseMeminfo(content, &out);
      break;
    case 'v':
      (void)kfleet::agent::ParseVmstat(content, &out);
      break;
    case 'c':
      (void)kfleet::agent::ParsePressure("cpu", content, &out);
      break;
    case 'M':
      (void)kfleet::agent::ParsePressure("memory", content, &out);
      break;
    case 'i':
      (void)kfleet::agent::ParsePressure("io", content, &out);
      break;
    case 'l':
      (void)kfleet::agent::ParseLoadavg(content, &out);
      break;
    case 's':
      (void)kfleet::agent::ParseStat(content, 100, &out);
      break;
    case 'd':
      (void)kfleet::agent::ParseDiskstats(content, &out);
      break;
    case 'f': {
      absl::StatusOr<std::vector<kfleet::agent::Mount>> mounts =
          kfleet::agent::ParseMounts(content);
      if (mounts.ok()) {
        kfleet::agent::FsStats st;
        st.block_size = 4096;
        st.blocks = UINT64_MAX;
        for (const auto& m : *mounts) kfleet::agent::AppendFilesystemSamples(m, st, &out);
      }
      break;
    }
    case 'b':
      (void)kfleet::agent::ParseBootId(content, &out);
      break;
    default:
      (void)kfleet::agent::ParseVmstatField(content, "oom_kill");
      break;
  }
  Check(out);
  return 0;
}

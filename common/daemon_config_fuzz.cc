// Fuzz target for daemon config files: applies the input as a config file of a daemon with a
// few flags of each kind. Errors must name the file; accepted input must leave every flag with
// a value its own parser accepts (read back through CommandLineFlag).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/string_view.h"
#include "common/daemon_config.h"

ABSL_FLAG(std::string, fz_state_dir, "/var/lib/kfleet", "state");
ABSL_FLAG(bool, fz_insecure, false, "plaintext");
ABSL_FLAG(std::vector<std::string>, fz_san, {}, "more names");
ABSL_FLAG(std::string, fz_heartbeat, "10s", "heartbeat");
ABSL_FLAG(int, fz_count, 1, "how many");
ABSL_FLAG(std::string, fz_config, "", "config file");

namespace {

const kfleet::DaemonSpec& Spec() {
  static const kfleet::DaemonSpec* spec = new kfleet::DaemonSpec{
      .name = "kfleet-fuzz",
      .groups = {{"All",
                  {"fz-state-dir DIR", "fz-insecure", "fz-san NAME,...", "fz-heartbeat DURATION",
                   "fz-count N", "fz-config FILE"}}},
      .config_flag = "fz-config",
      .reserved_keys = {"pools"},
      .main_file = __FILE__,
  };
  return *spec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kfleet::kMaxConfigFileBytes) return 0;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::Status s = kfleet::ApplyConfigText(Spec(), input, "fuzz.yaml");
  if (!s.ok() && absl::string_view(s.message()).find("fuzz.yaml") == absl::string_view::npos) {
    std::abort();
  }
  for (const char* name : {"fz_state_dir", "fz_insecure", "fz_san", "fz_heartbeat", "fz_count"}) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(flag->CurrentValue(), &error)) std::abort();
  }
  return 0;
}

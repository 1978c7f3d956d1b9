// Fuzz target of the job spec parser. Besides not crashing, it checks that errors are
// INVALID_ARGUMENT with a message, and that every spec it accepts comes back unchanged through
// JobSpecToYaml and ParseJobSpec.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cli/job_spec.h"
#include "google/protobuf/util/message_differencer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<kfleet::v1::JobSpec> spec = kfleet::cli::ParseJobSpec(text, "fuzz.yaml");
  if (!spec.ok()) {
    if (spec.status().code() != absl::StatusCode::kInvalidArgument ||
        spec.status().message().empty()) {
      std::fprintf(stderr, "unexpected status: %s\n", spec.status().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  std::string yaml = kfleet::cli::JobSpecToYaml(*spec);
  // Aliases can expand a spec past the input limit: those cannot be read back, by design.
  if (yaml.size() > kfleet::cli::kMaxJobSpecBytes) return 0;
  absl::StatusOr<kfleet::v1::JobSpec> again = kfleet::cli::ParseJobSpec(yaml, "emitted.yaml");
  if (!again.ok() || !google::protobuf::util::MessageDifferencer::Equals(*spec, *again)) {
    std::fprintf(stderr, "round trip failed\n--- input\n%.*s\n--- emitted\n%s\n--- %s\n",
                 static_cast<int>(size), reinterpret_cast<const char*>(data), yaml.c_str(),
                 again.ok() ? again->DebugString().c_str() : again.status().ToString().c_str());
    std::abort();
  }
  return 0;
}

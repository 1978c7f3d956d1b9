// Fuzz target for the expunge list parser: parses the input, checks the documented bounds and
// shapes, and that formatting what was parsed parses to the same entries.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/expunge_file.h"

namespace {

void Check(const std::vector<kfleet::v1::ExpungeEntry>& entries) {
  for (const kfleet::v1::ExpungeEntry& e : entries) {
    if (e.test().empty() || e.test().find('/') == std::string::npos) std::abort();
    if (e.test().size() + e.comment().size() > kfleet::kMaxExpungeLineBytes) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<kfleet::v1::ExpungeEntry>> entries =
      kfleet::ParseExpungeFile(input, "fuzz.txt");
  if (!entries.ok()) {
    if (entries.status().message().empty()) std::abort();
    return 0;
  }
  Check(*entries);
  absl::StatusOr<std::vector<kfleet::v1::ExpungeEntry>> again =
      kfleet::ParseExpungeFile(kfleet::FormatExpungeFile(*entries), "again.txt");
  if (!again.ok() || again->size() != entries->size()) std::abort();
  for (size_t i = 0; i < entries->size(); ++i) {
    if ((*again)[i].test() != (*entries)[i].test() ||
        (*again)[i].comment() != (*entries)[i].comment()) {
      std::abort();
    }
  }
  (void)kfleet::ParseExpungePath(input);
  return 0;
}

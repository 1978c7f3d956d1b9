// Fuzz target for the kernel log parsers: the input as one /dev/kmsg record, as a log excerpt
// (ParseKmsgText), and line by line, through KernelEventParser. Checks that events stay within
// their bounds.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "agent/kmsg/kernel_events.h"
#include "agent/kmsg/kmsg_record.h"

namespace {

using kfleet::agent::KernelEventParser;
using kfleet::agent::KmsgRecord;

void Check(const std::vector<kfleet::v1::KernelEvent>& events) {
  for (const kfleet::v1::KernelEvent& event : events) {
    if (event.detail().size() > kfleet::agent::kMaxDetailBytes) std::abort();
    if (event.message().size() > kfleet::agent::kMaxKmsgRecordBytes) std::abort();
    if (event.kind().empty()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  (void)kfleet::agent::ParseKmsgRecord(input);

  KernelEventParser excerpt("boot", 1700000000000);
  absl::StatusOr<std::vector<KmsgRecord>> records = kfleet::agent::ParseKmsgText(input);
  if (records.ok()) {
    for (const KmsgRecord& record : *records) Check(excerpt.Feed(record));
  }
  Check(excerpt.Flush());

  // Line by line, skipping what does not parse, so that one bad line does not hide the rest.
  KernelEventParser lines("boot", 0);
  for (absl::string_view line : absl::StrSplit(input, '\n')) {
    absl::StatusOr<KmsgRecord> record = absl::StartsWith(line, "[") || absl::StartsWith(line, "<")
                                            ? kfleet::agent::ParseDmesgLine(line)
                                            : kfleet::agent::ParseKmsgRecord(line);
    if (record.ok()) Check(lines.Feed(*record));
    Check(lines.FeedLine(line, 0));
  }
  Check(lines.Flush());
  return 0;
}

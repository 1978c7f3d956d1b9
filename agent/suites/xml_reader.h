// A bounded, streaming XML reader over expat for result files written by test suites (fstests'
// result.xml). Events are delivered in document order as they are parsed, so a handler sees every
// element that was complete before a truncation or a syntax error.
//
// Refused outright: any DOCTYPE (so no entity can be declared or expanded), nesting deeper than
// `max_depth`, more than `max_elements` elements, input larger than `max_input_bytes`.
#ifndef KFLEET_AGENT_SUITES_XML_READER_H_
#define KFLEET_AGENT_SUITES_XML_READER_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kfleet::agent {

struct XmlLimits {
  size_t max_input_bytes = 64 << 20;
  int max_depth = 32;
  int64_t max_elements = 1'000'000;
};

using XmlAttributes = std::vector<std::pair<absl::string_view, absl::string_view>>;

// Receives the parse events. The views are valid only during the call. A non-OK status stops the
// parse and becomes ReadXml's result (with the line prefixed).
class XmlHandler {
 public:
  virtual ~XmlHandler() = default;
  virtual absl::Status StartElement(absl::string_view name, const XmlAttributes& attributes) = 0;
  virtual absl::Status EndElement(absl::string_view name) = 0;
  // Character data (text and CDATA), possibly split into several calls.
  virtual absl::Status Text(absl::string_view text) = 0;
};

// Parses `input` (UTF-8 or with an XML declaration naming a supported encoding), calling `handler`.
// Errors name the line: "line 12: mismatched tag". Input that ends inside an element or a token
// (a file cut short by a crash) gives DataLoss "line N: input ends inside <testcase> (truncated)";
// other syntax errors InvalidArgument; limits ResourceExhausted.
absl::Status ReadXml(absl::string_view input, XmlHandler& handler, const XmlLimits& limits = {});

// Value of attribute `name`, or `fallback` when absent.
absl::string_view XmlAttribute(const XmlAttributes& attributes, absl::string_view name,
                               absl::string_view fallback = "");

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_XML_READER_H_

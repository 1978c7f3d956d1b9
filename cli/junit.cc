#include "cli/junit.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace kfleet::cli {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// The length of the valid UTF-8 sequence at `s[i]` of a character XML allows, or 0.
size_t ValidXmlChar(absl::string_view s, size_t i) {
  auto c = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b = c(i);
  if (b < 0x80) return (b >= 0x20 || b == '\t' || b == '\n' || b == '\r') ? 1 : 0;
  size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0;
  if (n == 0 || b > 0xF4 || i + n > s.size()) return 0;
  uint32_t cp = b & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k) {
    if ((c(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  if (cp == 0xFFFE || cp == 0xFFFF) return 0;
  return n;
}

std::string Seconds(int64_t ms) { return absl::StrFormat("%.3f", std::max<int64_t>(ms, 0) / 1e3); }

std::string FirstLine(const std::string& text) {
  size_t end = text.find_first_of("\r\n");
  return end == std::string::npos ? text : text.substr(0, end);
}

// The runs of one test: the first run shown, the re-runs counted.
struct Case {
  const v1::TestRecord* first = nullptr;
  uint32_t reruns = 0;
  uint32_t reruns_failed = 0;
};

bool Before(const v1::TestRecord& a, const v1::TestRecord& b) {
  return std::make_tuple(std::max<uint32_t>(a.result().run(), 1), a.time_unix_ms()) <
         std::make_tuple(std::max<uint32_t>(b.result().run(), 1), b.time_unix_ms());
}

}  // namespace

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t n = ValidXmlChar(text, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(text.data() + i, n);
      i += n;
      continue;
    }
    switch (text[i]) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\r':
        out += "&#13;";  // kept through the parser's end-of-line handling
        break;
      default:
        out += text[i];
    }
    ++i;
  }
  return out;
}

std::string RenderJunit(const v1::GetResultsResponse& results) {
  // suite and section -> test name -> its runs.
  std::map<std::pair<std::string, std::string>, std::map<std::string, Case>> suites;
  for (const v1::TestRecord& r : results.results()) {
    Case& c = suites[{r.result().suite(), r.result().section()}][r.result().name()];
    if (r.result().run() > 1) {
      ++c.reruns;
      if (r.result().status() == v1::TEST_FAIL || r.result().status() == v1::TEST_ERROR) {
        ++c.reruns_failed;
      }
    } else if (c.first == nullptr || Before(r, *c.first)) {
      c.first = &r;
    }
  }

  struct Totals {
    size_t tests = 0, failures = 0, errors = 0, skipped = 0;
    int64_t ms = 0;
    std::string Attributes() const {
      return absl::StrCat("tests=\"", tests, "\" failures=\"", failures, "\" errors=\"", errors,
                          "\" skipped=\"", skipped, "\" time=\"", Seconds(ms), "\"");
    }
  };
  Totals all;
  std::string body;
  for (const auto& [key, cases] : suites) {
    const std::string name =
        key.second.empty() ? key.first : absl::StrCat(key.first, ".", key.second);
    Totals totals;
    std::string testcases;
    for (const auto& [test, c] : cases) {
      if (c.first == nullptr) continue;  // re-runs whose first run is not stored
      const v1::TestResult& r = c.first->result();
      ++totals.tests;
      totals.ms += std::max<int64_t>(r.duration_ms(), 0);
      absl::StrAppend(&testcases, "    <testcase classname=\"", XmlEscape(name), "\" name=\"",
                      XmlEscape(test), "\" time=\"", Seconds(r.duration_ms()), "\"");
      std::string inner;
      auto element = [&](absl::string_view tag) {
        std::string message = XmlEscape(FirstLine(r.detail()));
        if (r.detail().empty()) {
          absl::StrAppend(&inner, "      <", tag, "/>\n");
        } else {
          absl::StrAppend(&inner, "      <", tag, " message=\"", message, "\">",
                          XmlEscape(r.detail()), "</", tag, ">\n");
        }
      };
      switch (r.status()) {
        case v1::TEST_FAIL:
          ++totals.failures;
          element("failure");
          break;
        case v1::TEST_SKIP:
          ++totals.skipped;
          element("skipped");
          break;
        case v1::TEST_PASS:
          break;
        default:  // TEST_ERROR, and a status this kctl does not know
          ++totals.errors;
          element("error");
          break;
      }
      if (c.reruns > 0) {
        absl::StrAppend(&inner, "      <system-out>re-run ", c.reruns, " times: ", c.reruns_failed,
                        " failed</system-out>\n");
      }
      if (inner.empty()) {
        absl::StrAppend(&testcases, "/>\n");
      } else {
        absl::StrAppend(&testcases, ">\n", inner, "    </testcase>\n");
      }
    }
    absl::StrAppend(&body, "  <testsuite name=\"", XmlEscape(name), "\" ", totals.Attributes(),
                    ">\n", testcases, "  </testsuite>\n");
    all.tests += totals.tests;
    all.failures += totals.failures;
    all.errors += totals.errors;
    all.skipped += totals.skipped;
    all.ms += totals.ms;
  }
  std::string job = results.job().id();
  if (!results.job().spec().name().empty()) absl::StrAppend(&job, " ", results.job().spec().name());
  return absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "<testsuites name=\"",
                      XmlEscape(job), "\" ", all.Attributes(), ">\n", body, "</testsuites>\n");
}

}  // namespace kfleet::cli

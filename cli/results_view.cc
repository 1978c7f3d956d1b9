#include "cli/results_view.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/format.h"
#include "cli/table.h"

namespace kfleet::cli {
namespace {

using TestKey = std::tuple<std::string, std::string, std::string>;  // suite, section, name

TestKey KeyOf(const v1::TestResult& r) { return {r.suite(), r.section(), r.name()}; }

std::string FirstLine(const std::string& text) {
  size_t end = text.find_first_of("\r\n");
  return end == std::string::npos ? text : text.substr(0, end);
}

std::string Rate(const v1::FailureRate& r) { return absl::StrCat(r.failed(), "/", r.runs()); }
std::string Passed(const v1::FailureRate& r) {
  return absl::StrCat(r.runs() - std::min(r.failed(), r.runs()), "/", r.runs());
}

// A test's runs in a job, in run order.
struct TestRuns {
  std::vector<const v1::TestRecord*> runs;
  std::set<std::string> hosts;
};

std::map<TestKey, TestRuns> ByTest(const v1::GetResultsResponse& results) {
  std::map<TestKey, TestRuns> tests;
  for (const v1::TestRecord& r : results.results()) {
    TestRuns& t = tests[KeyOf(r.result())];
    t.runs.push_back(&r);
    t.hosts.insert(r.host_name().empty() ? r.host_id() : r.host_name());
  }
  for (auto& [key, t] : tests) {
    std::stable_sort(t.runs.begin(), t.runs.end(), [](const auto* a, const auto* b) {
      return std::max<uint32_t>(a->result().run(), 1) < std::max<uint32_t>(b->result().run(), 1);
    });
  }
  return tests;
}

std::string StatusWord(v1::TestStatus s) {
  switch (s) {
    case v1::TEST_PASS:
      return "PASS";
    case v1::TEST_FAIL:
      return "FAIL";
    case v1::TEST_SKIP:
      return "SKIP";
    case v1::TEST_ERROR:
      return "ERROR";
    default:
      return "UNKNOWN";
  }
}

std::string SuiteWord(const v1::TestComparison& t) {
  return t.section().empty() ? t.suite() : absl::StrCat(t.suite(), ".", t.section());
}

std::string WithDetail(std::string text, const std::string& detail) {
  std::string line = OneLine(FirstLine(detail));
  return line.empty() ? text : absl::StrCat(text, ": ", line);
}

// What the comparison says of one test, after its kind, suite and name.
std::string Explain(const v1::TestComparison& t) {
  const v1::FailureRate& b = t.baseline();
  const v1::FailureRate& d = t.dev();
  switch (t.kind()) {
    case v1::REGRESSION:
      return WithDetail(
          absl::StrCat("failed ", Rate(d), " runs on dev, passed ", Passed(b), " on baseline"),
          t.detail());
    case v1::FIXED:
      return absl::StrCat("passed ", Passed(d), " runs on dev, failed ", Rate(b), " on baseline");
    case v1::FLAKY: {
      std::string text = absl::StrCat("failed ", Rate(d), " dev runs");
      if (b.failed() > 0) absl::StrAppend(&text, ", ", Rate(b), " baseline runs");
      absl::StrAppend(&text, ", ", Rate(t.history()), " overall");
      return WithDetail(text, t.detail());
    }
    case v1::NEW_TEST:
      if (d.failed() == 0) return absl::StrCat("new on dev, passed ", Passed(d), " runs");
      return WithDetail(absl::StrCat("new on dev, failed ", Rate(d), " runs"), t.detail());
    case v1::NOT_RUN:
      return absl::StrCat("not run on dev, ran ", b.runs(), " times on baseline (failed ",
                          b.failed(), ")");
    case v1::STILL_FAILING:
      return WithDetail(
          absl::StrCat("failed ", Rate(d), " runs on dev and ", Rate(b), " on baseline"),
          t.detail());
    case v1::UNCHANGED:
      return absl::StrCat("no failure in ", d.runs(), " dev and ", b.runs(), " baseline runs");
    default:
      return "";
  }
}

bool ShownByDefault(const v1::TestComparison& t) {
  switch (t.kind()) {
    case v1::REGRESSION:
    case v1::FIXED:
    case v1::FLAKY:
    case v1::NOT_RUN:
      return true;
    case v1::NEW_TEST:
      return t.dev().failed() > 0;
    default:
      return false;
  }
}

std::string JobWords(const v1::Job& job, const std::string& kernel) {
  std::string words = job.id();
  if (!job.spec().name().empty()) absl::StrAppend(&words, " (", job.spec().name(), ")");
  absl::StrAppend(&words, " on ", kernel.empty() ? "an unknown kernel" : kernel);
  return words;
}

}  // namespace

bool TestRunFailed(v1::TestStatus status) {
  return status == v1::TEST_FAIL || status == v1::TEST_ERROR;
}

bool AnyTestFailed(const v1::GetResultsResponse& results) {
  return std::any_of(results.results().begin(), results.results().end(),
                     [](const v1::TestRecord& r) { return TestRunFailed(r.result().status()); });
}

std::string RenderResultsSummary(const v1::GetResultsResponse& results) {
  struct Counts {
    uint32_t passed = 0, failed = 0, skipped = 0, errors = 0;
    int64_t ms = 0;
    std::set<std::string> hosts;
  };
  std::map<std::pair<std::string, std::string>, Counts> groups;
  for (const v1::TestRecord& r : results.results()) {
    Counts& c = groups[{r.result().suite(), r.result().section()}];
    c.ms += std::max<int64_t>(r.result().duration_ms(), 0);
    c.hosts.insert(r.host_name().empty() ? r.host_id() : r.host_name());
    if (r.result().run() > 1) continue;  // re-runs are not more tests
    switch (r.result().status()) {
      case v1::TEST_PASS:
        ++c.passed;
        break;
      case v1::TEST_FAIL:
        ++c.failed;
        break;
      case v1::TEST_SKIP:
        ++c.skipped;
        break;
      default:
        ++c.errors;
        break;
    }
  }
  if (groups.empty()) return "";
  Table table({"SUITE", "SECTION", "PASSED", "FAILED", "SKIPPED", "ERRORS", "TIME", "HOSTS"});
  for (const auto& [key, c] : groups) {
    table.AddRow({key.first, key.second, absl::StrCat(c.passed), absl::StrCat(c.failed),
                  absl::StrCat(c.skipped), absl::StrCat(c.errors), FormatMillis(c.ms),
                  absl::StrJoin(c.hosts, ",")});
  }
  return table.Render();
}

std::string RenderTestLines(const v1::GetResultsResponse& results, bool all) {
  std::map<TestKey, const v1::TestHistory*> histories;
  for (const v1::TestHistory& h : results.tests()) {
    histories[{h.suite(), h.section(), h.name()}] = &h;
  }
  std::string out;
  for (const auto& [key, t] : ByTest(results)) {
    const v1::TestRecord* first_failed = nullptr;
    bool any_fail = false;
    uint32_t failed = 0;
    for (const v1::TestRecord* r : t.runs) {
      if (!TestRunFailed(r->result().status())) continue;
      ++failed;
      if (first_failed == nullptr) first_failed = r;
      any_fail = any_fail || r->result().status() == v1::TEST_FAIL;
    }
    if (failed == 0 && !all) continue;
    const auto& [suite, section, name] = key;
    std::string word = failed == 0 ? StatusWord(t.runs.front()->result().status())
                       : any_fail  ? "FAIL"
                                   : "ERROR";
    std::string line =
        absl::StrCat(word, "  ", name, "  ", section.empty() ? suite : section, "  ",
                     absl::StrJoin(t.hosts, ","), "  ", failed, "/", t.runs.size(), " runs failed");
    auto h = histories.find(key);
    if (h != histories.end() && h->second->history().runs() > 0) {
      absl::StrAppend(&line, " (history ", Rate(h->second->history()), ")");
    }
    const v1::TestRecord* shown = first_failed != nullptr ? first_failed : t.runs.front();
    std::string detail = OneLine(FirstLine(shown->result().detail()));
    if (!detail.empty()) absl::StrAppend(&line, "  ", detail);
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string JobKernel(const v1::Job& job, const v1::GetResultsResponse* results) {
  if (!job.build().release().empty()) return job.build().release();
  if (results == nullptr) return "";
  std::set<std::string> releases;
  for (const v1::TestRecord& r : results->results()) {
    if (!r.kernel_release().empty()) releases.insert(r.kernel_release());
  }
  return absl::StrJoin(releases, ", ");
}

std::string RenderComparison(const v1::CompareResultsResponse& c,
                             const std::string& baseline_kernel, const std::string& dev_kernel,
                             bool all) {
  std::string out = absl::StrCat("baseline ", JobWords(c.baseline(), baseline_kernel), "\n",
                                 "dev      ", JobWords(c.dev(), dev_kernel), "\n");
  std::map<v1::ComparisonKind, int> counts;
  int new_failing = 0;
  for (const v1::TestComparison& t : c.tests()) {
    ++counts[t.kind()];
    if (t.kind() == v1::NEW_TEST && t.dev().failed() > 0) ++new_failing;
    if (!all && !ShownByDefault(t)) continue;
    absl::StrAppend(&out, v1::ComparisonKind_Name(t.kind()), "  ", SuiteWord(t), "  ", t.name(),
                    "  ", Explain(t), "\n");
  }
  absl::StrAppend(&out, counts[v1::REGRESSION], " regressions, ", counts[v1::FIXED], " fixed, ",
                  counts[v1::FLAKY], " flaky, ", counts[v1::NEW_TEST], " new (", new_failing,
                  " failing), ", counts[v1::NOT_RUN], " not run, ", counts[v1::STILL_FAILING],
                  " still failing, ", counts[v1::UNCHANGED], " unchanged\n");
  return out;
}

}  // namespace kfleet::cli

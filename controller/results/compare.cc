#include "controller/results/compare.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "absl/strings/string_view.h"

namespace kfleet::controller {
namespace {

using TestKey = std::tuple<std::string, std::string, std::string>;  // suite, section, name

TestKey KeyOf(const v1::TestResult& r) { return {r.suite(), r.section(), r.name()}; }

// The runs of one test in one set of records.
struct Runs {
  v1::FailureRate rate;
  const v1::TestRecord* first = nullptr;         // the first run
  const v1::TestRecord* first_failed = nullptr;  // the first run that failed
};

// Re-runs are numbered from 2; 0 (unset) is a first run. Runs of the same number (one per host
// when every host runs every test) are taken in time order, then by host.
bool RunsBefore(const v1::TestRecord& a, const v1::TestRecord& b) {
  auto order = [](const v1::TestRecord& r) {
    return std::make_tuple(std::max<uint32_t>(r.result().run(), 1), r.time_unix_ms(),
                           absl::string_view(r.host_name()));
  };
  return order(a) < order(b);
}

void Add(Runs& runs, const v1::TestRecord& r) {
  runs.rate.set_runs(runs.rate.runs() + 1);
  bool failed = RunFailed(r.result().status());
  if (failed) runs.rate.set_failed(runs.rate.failed() + 1);
  if (runs.first == nullptr || RunsBefore(r, *runs.first)) runs.first = &r;
  if (failed && (runs.first_failed == nullptr || RunsBefore(r, *runs.first_failed))) {
    runs.first_failed = &r;
  }
}

std::map<TestKey, Runs> ByTest(const std::vector<v1::TestRecord>& records) {
  std::map<TestKey, Runs> tests;
  for (const v1::TestRecord& r : records) Add(tests[KeyOf(r.result())], r);
  return tests;
}

bool AllFailed(const v1::FailureRate& r) { return r.runs() > 0 && r.failed() == r.runs(); }
bool SomeFailed(const v1::FailureRate& r) { return r.failed() > 0 && r.failed() < r.runs(); }

v1::ComparisonKind Classify(const v1::FailureRate& baseline, const v1::FailureRate& dev,
                            const v1::FailureRate& outside) {
  if (baseline.runs() == 0) return v1::NEW_TEST;
  if (dev.runs() == 0) return v1::NOT_RUN;
  if (SomeFailed(dev) || SomeFailed(baseline)) return v1::FLAKY;
  // From here each job failed in every run or in none.
  bool dev_failed = AllFailed(dev);
  bool baseline_failed = AllFailed(baseline);
  if (dev_failed && !baseline_failed) return SomeFailed(outside) ? v1::FLAKY : v1::REGRESSION;
  if (baseline_failed && !dev_failed) return v1::FIXED;
  if (baseline_failed) return v1::STILL_FAILING;
  return v1::UNCHANGED;
}

// Where a kind goes in the answer: what needs attention first.
int KindRank(v1::ComparisonKind kind) {
  switch (kind) {
    case v1::REGRESSION:
      return 0;
    case v1::FIXED:
      return 1;
    case v1::FLAKY:
      return 2;
    case v1::NEW_TEST:
      return 3;
    case v1::NOT_RUN:
      return 4;
    case v1::STILL_FAILING:
      return 5;
    case v1::UNCHANGED:
      return 6;
    default:
      return 7;
  }
}

std::string FirstLine(const std::string& text) {
  size_t end = text.find_first_of("\r\n");
  return end == std::string::npos ? text : text.substr(0, end);
}

}  // namespace

bool RunFailed(v1::TestStatus status) {
  return status == v1::TEST_FAIL || status == v1::TEST_ERROR;
}

std::vector<v1::TestHistory> SummarizeTests(const std::vector<v1::TestRecord>& job,
                                            const std::vector<v1::TestRecord>& history) {
  std::map<TestKey, Runs> in_job = ByTest(job);
  std::map<TestKey, Runs> in_history;
  for (const v1::TestRecord& r : history) {
    TestKey key = KeyOf(r.result());
    if (in_job.count(key) != 0) Add(in_history[key], r);
  }
  std::vector<v1::TestHistory> out;
  out.reserve(in_job.size());
  for (const auto& [key, runs] : in_job) {
    v1::TestHistory& t = out.emplace_back();
    t.set_suite(std::get<0>(key));
    t.set_section(std::get<1>(key));
    t.set_name(std::get<2>(key));
    *t.mutable_job() = runs.rate;
    *t.mutable_history() = in_history[key].rate;
  }
  return out;
}

v1::CompareResultsResponse CompareResults(const std::vector<v1::TestRecord>& baseline,
                                          const std::vector<v1::TestRecord>& dev,
                                          const std::vector<v1::TestRecord>& history) {
  std::map<TestKey, Runs> in_baseline = ByTest(baseline);
  std::map<TestKey, Runs> in_dev = ByTest(dev);
  std::set<std::string> jobs;
  for (const v1::TestRecord& r : baseline) jobs.insert(r.job_id());
  for (const v1::TestRecord& r : dev) jobs.insert(r.job_id());

  std::set<TestKey> keys;
  for (const auto& [key, runs] : in_baseline) keys.insert(key);
  for (const auto& [key, runs] : in_dev) keys.insert(key);
  std::map<TestKey, v1::FailureRate> overall;
  std::map<TestKey, v1::FailureRate> outside;  // runs of neither job: tells a known flake
  for (const v1::TestRecord& r : history) {
    TestKey key = KeyOf(r.result());
    if (keys.count(key) == 0) continue;
    bool failed = RunFailed(r.result().status());
    for (v1::FailureRate* rate :
         {&overall[key], jobs.count(r.job_id()) == 0 ? &outside[key] : nullptr}) {
      if (rate == nullptr) continue;
      rate->set_runs(rate->runs() + 1);
      if (failed) rate->set_failed(rate->failed() + 1);
    }
  }

  v1::CompareResultsResponse response;
  for (const TestKey& key : keys) {
    const Runs& b = in_baseline[key];
    const Runs& d = in_dev[key];
    v1::TestComparison* t = response.add_tests();
    t->set_suite(std::get<0>(key));
    t->set_section(std::get<1>(key));
    t->set_name(std::get<2>(key));
    t->set_kind(Classify(b.rate, d.rate, outside[key]));
    *t->mutable_baseline() = b.rate;
    *t->mutable_dev() = d.rate;
    *t->mutable_history() = overall[key];
    if (d.first_failed != nullptr) t->set_detail(FirstLine(d.first_failed->result().detail()));
    if (b.first != nullptr) t->set_baseline_status(b.first->result().status());
    if (d.first != nullptr) t->set_dev_status(d.first->result().status());
    if (t->kind() == v1::REGRESSION) response.set_regression(true);
  }
  // `keys` is ordered by suite, section and name already: a stable sort by kind keeps that.
  std::stable_sort(response.mutable_tests()->begin(), response.mutable_tests()->end(),
                   [](const v1::TestComparison& a, const v1::TestComparison& b) {
                     return KindRank(a.kind()) < KindRank(b.kind());
                   });
  return response;
}

}  // namespace kfleet::controller

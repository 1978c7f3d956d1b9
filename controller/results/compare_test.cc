#include "controller/results/compare.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kfleet::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Records `runs` of test NAME (suite exec, no section) in JOB: one status per run, the first run
// first, then its re-runs.
void AddRuns(std::vector<v1::TestRecord>& records, const std::string& job, const std::string& name,
             const std::vector<v1::TestStatus>& runs, const std::string& detail = "") {
  for (size_t i = 0; i < runs.size(); ++i) {
    v1::TestRecord& r = records.emplace_back();
    r.set_job_id(job);
    r.set_host_name("guest-1");
    r.set_time_unix_ms(1000 + static_cast<int64_t>(records.size()));
    r.mutable_result()->set_suite("exec");
    r.mutable_result()->set_name(name);
    r.mutable_result()->set_status(runs[i]);
    r.mutable_result()->set_run(static_cast<uint32_t>(i + 1));
    r.mutable_result()->set_detail(detail);
  }
}

constexpr v1::TestStatus P = v1::TEST_PASS;
constexpr v1::TestStatus F = v1::TEST_FAIL;
constexpr v1::TestStatus E = v1::TEST_ERROR;
constexpr v1::TestStatus S = v1::TEST_SKIP;

struct Jobs {
  std::vector<v1::TestRecord> baseline, dev, history;
  // Records a test's runs in the baseline job, the dev job, and in both of them and `older` jobs'
  // runs in the history.
  void Add(const std::string& name, const std::vector<v1::TestStatus>& base,
           const std::vector<v1::TestStatus>& d, const std::vector<v1::TestStatus>& older = {},
           const std::string& detail = "") {
    AddRuns(baseline, "j-base", name, base);
    AddRuns(dev, "j-dev", name, d, detail);
    AddRuns(history, "j-base", name, base);
    AddRuns(history, "j-dev", name, d, detail);
    for (size_t i = 0; i < older.size(); ++i) {
      AddRuns(history, "j-old" + std::to_string(i), name, {older[i]});
    }
  }
  v1::TestComparison Only() const {
    v1::CompareResultsResponse r = CompareResults(baseline, dev, history);
    EXPECT_EQ(r.tests_size(), 1);
    return r.tests_size() == 1 ? r.tests(0) : v1::TestComparison();
  }
};

v1::ComparisonKind KindOf(const std::vector<v1::TestStatus>& base,
                          const std::vector<v1::TestStatus>& dev,
                          const std::vector<v1::TestStatus>& older = {}) {
  Jobs jobs;
  jobs.Add("t", base, dev, older);
  return jobs.Only().kind();
}

// Validates that FAIL and ERROR are failures and PASS and SKIP are not.
TEST(CompareTest, WhatCountsAsAFailure) {
  EXPECT_TRUE(RunFailed(F));
  EXPECT_TRUE(RunFailed(E));
  EXPECT_FALSE(RunFailed(P));
  EXPECT_FALSE(RunFailed(S));
  EXPECT_FALSE(RunFailed(v1::TEST_STATUS_UNSPECIFIED));
}

// Validates the rule of each kind on a single test.
TEST(CompareTest, KindOfEachRule) {
  EXPECT_EQ(KindOf({P}, {F, F, F}), v1::REGRESSION);
  EXPECT_EQ(KindOf({P}, {E}), v1::REGRESSION);
  EXPECT_EQ(KindOf({F, F, F}, {P}), v1::FIXED);
  EXPECT_EQ(KindOf({F}, {F, F}), v1::STILL_FAILING);
  EXPECT_EQ(KindOf({P}, {P}), v1::UNCHANGED);
  EXPECT_EQ(KindOf({S}, {P}), v1::UNCHANGED);
  EXPECT_EQ(KindOf({P}, {S}), v1::UNCHANGED);
  EXPECT_EQ(KindOf({F, P}, {P}), v1::FLAKY);  // the baseline was flaky
  EXPECT_EQ(KindOf({F, P}, {F, F}), v1::FLAKY);
  EXPECT_EQ(KindOf({P}, {F, P, F}), v1::FLAKY);
  EXPECT_EQ(KindOf({}, {F}), v1::NEW_TEST);
  EXPECT_EQ(KindOf({}, {P}), v1::NEW_TEST);
  EXPECT_EQ(KindOf({P}, {}), v1::NOT_RUN);
  EXPECT_EQ(KindOf({F}, {}), v1::NOT_RUN);
}

// Validates that a test failing 1 of 3 dev runs is a flake at that rate, never a regression.
TEST(CompareTest, FlakeAtAKnownRateIsNotARegression) {
  Jobs jobs;
  jobs.Add("t_flaky", {P, P}, {F, P, P}, {P, F, P}, "assertion failed\nat line 3");
  v1::CompareResultsResponse r = CompareResults(jobs.baseline, jobs.dev, jobs.history);
  ASSERT_EQ(r.tests_size(), 1);
  EXPECT_FALSE(r.regression());
  const v1::TestComparison& t = r.tests(0);
  EXPECT_EQ(t.kind(), v1::FLAKY);
  EXPECT_EQ(t.dev().failed(), 1u);
  EXPECT_EQ(t.dev().runs(), 3u);
  EXPECT_EQ(t.baseline().runs(), 2u);
  EXPECT_EQ(t.history().failed(), 2u);  // 1 of dev's and 1 of the older jobs'
  EXPECT_EQ(t.history().runs(), 8u);
  EXPECT_EQ(t.detail(), "assertion failed");
  EXPECT_EQ(t.dev_status(), v1::TEST_FAIL);
  EXPECT_EQ(t.baseline_status(), v1::TEST_PASS);
}

// Validates that a failure in every dev run is still FLAKY when older jobs saw the test both fail
// and pass, and a REGRESSION when they only saw it pass, or only fail.
TEST(CompareTest, HistoryOutsideTheJobsTellsAKnownFlake) {
  EXPECT_EQ(KindOf({P}, {F, F, F}, {P, F, P, P}), v1::FLAKY);
  EXPECT_EQ(KindOf({P}, {F, F, F}, {P, P, P}), v1::REGRESSION);
  EXPECT_EQ(KindOf({P}, {F, F, F}, {F, F}), v1::REGRESSION);
  // The two jobs' own runs do not make a flake: the baseline passed, dev failed.
  Jobs jobs;
  jobs.Add("t", {P, P}, {F, F});
  EXPECT_EQ(jobs.Only().kind(), v1::REGRESSION);
}

// Validates the order (kind, then suite, section, name), the regression flag, and that a test of
// one section is another test than the same name in another section.
TEST(CompareTest, OrderAndRegressionFlag) {
  Jobs jobs;
  jobs.Add("z_unchanged", {P}, {P});
  jobs.Add("b_regressed", {P}, {F, F, F}, {}, "boom");
  jobs.Add("a_regressed", {P}, {F, F, F});
  jobs.Add("fixed", {F}, {P});
  jobs.Add("still", {F}, {F, F, F});
  jobs.Add("new", {}, {F});
  jobs.Add("gone", {P}, {});
  jobs.Add("flaky", {P}, {F, P});
  v1::TestRecord other_section = jobs.dev.back();
  other_section.mutable_result()->set_section("s2");
  other_section.mutable_result()->set_name("a_regressed");
  other_section.mutable_result()->set_status(P);
  jobs.dev.push_back(other_section);

  v1::CompareResultsResponse r = CompareResults(jobs.baseline, jobs.dev, jobs.history);
  EXPECT_TRUE(r.regression());
  std::vector<std::string> order;
  for (const v1::TestComparison& t : r.tests()) {
    order.push_back(t.section() + "/" + t.name() + " " + v1::ComparisonKind_Name(t.kind()));
  }
  EXPECT_THAT(order,
              ElementsAre("/a_regressed REGRESSION", "/b_regressed REGRESSION", "/fixed FIXED",
                          "/flaky FLAKY", "/new NEW_TEST", "s2/a_regressed NEW_TEST",
                          "/gone NOT_RUN", "/still STILL_FAILING", "/z_unchanged UNCHANGED"));
  EXPECT_EQ(r.tests(1).detail(), "boom");
  EXPECT_EQ(r.tests(1).dev().failed(), 3u);
  EXPECT_EQ(r.tests(1).baseline().runs(), 1u);
}

// Validates that the detail is that of dev's first failing run, by run number and not by the
// order of the records, and that nothing is flagged without a regression.
TEST(CompareTest, DetailOfFirstFailingRun) {
  std::vector<v1::TestRecord> dev;
  AddRuns(dev, "j-dev", "t", {P, F, F});
  dev[1].mutable_result()->set_detail("second run\nmore");
  dev[2].mutable_result()->set_detail("third run");
  std::swap(dev[1], dev[2]);
  v1::CompareResultsResponse r = CompareResults({}, dev, dev);
  ASSERT_EQ(r.tests_size(), 1);
  EXPECT_EQ(r.tests(0).kind(), v1::NEW_TEST);
  EXPECT_EQ(r.tests(0).detail(), "second run");
  EXPECT_EQ(r.tests(0).dev_status(), v1::TEST_PASS);
  EXPECT_FALSE(r.regression());
  EXPECT_THAT(CompareResults({}, {}, {}).tests(), IsEmpty());
}

// Validates per-test rates of a job's runs and of the whole history, and that history of other
// tests is left out.
TEST(SummarizeTestsTest, JobAndHistoryRates) {
  std::vector<v1::TestRecord> job, history;
  AddRuns(job, "j-1", "b", {F, F, F});
  AddRuns(job, "j-1", "a", {P});
  history = job;
  AddRuns(history, "j-0", "b", {P});
  AddRuns(history, "j-0", "b", {F});
  AddRuns(history, "j-0", "unrelated", {F});
  std::vector<v1::TestHistory> tests = SummarizeTests(job, history);
  ASSERT_EQ(tests.size(), 2u);
  EXPECT_EQ(tests[0].name(), "a");
  EXPECT_EQ(tests[0].job().runs(), 1u);
  EXPECT_EQ(tests[0].job().failed(), 0u);
  EXPECT_EQ(tests[0].history().runs(), 1u);
  EXPECT_EQ(tests[1].name(), "b");
  EXPECT_EQ(tests[1].suite(), "exec");
  EXPECT_EQ(tests[1].job().failed(), 3u);
  EXPECT_EQ(tests[1].job().runs(), 3u);
  EXPECT_EQ(tests[1].history().failed(), 4u);
  EXPECT_EQ(tests[1].history().runs(), 5u);
}

}  // namespace
}  // namespace kfleet::controller

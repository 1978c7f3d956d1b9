// Test steps in the store: results stored with their kernel, failures re-run on the same host,
// sharded steps pulled longest first by free hosts, a lost host's test recorded as an error while
// the others take the rest, progress, and expunge lists.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <set>

#include "controller/store/sqlite_store.h"

namespace kfleet::controller {
namespace {

class TestJobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kfleet-tjobs-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto store = SqliteStore::Open(dir_ + "/kfleet.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void Register(const std::string& id, const std::string& release = "6.1.0-1-amd64") {
    v1::Hello hello;
    hello.set_host_id(id);
    hello.set_name(id);
    hello.set_boot_id("b1");
    hello.mutable_facts()->set_kernel_release(release);
    (*hello.mutable_labels())["pool"] = "local";
    ASSERT_TRUE(store_->RegisterHost(hello, 1000).ok());
  }

  static v1::JobSpec ExecTests(std::vector<std::string> hosts, std::vector<std::string> tests,
                               uint32_t shard, uint32_t reruns) {
    v1::JobSpec spec;
    spec.set_name("tests");
    for (const std::string& h : hosts) spec.mutable_hosts()->add_names(h);
    v1::TestStep* t = spec.add_steps()->mutable_test();
    t->set_suite("exec");
    t->set_section("scripted");
    t->add_argv("./run");
    t->add_argv("{test}");
    for (const std::string& name : tests) t->add_tests(name);
    t->set_shard(shard);
    t->set_reruns(reruns);
    return spec;
  }

  // The agent of `host` reports results (name, status, duration) of `cmd` then its end.
  ApplyOutcome Report(const std::string& host, const v1::Command& cmd,
                      const std::vector<std::tuple<std::string, v1::TestStatus, int64_t>>& results,
                      v1::Verdict verdict = v1::VERDICT_UNSPECIFIED) {
    std::vector<v1::SequencedItem> items;
    bool failed = false;
    v1::TestCounts counts;  // as the agent counts them in its result
    for (const auto& [name, status, ms] : results) {
      counts.set_passed(counts.passed() + (status == v1::TEST_PASS));
      counts.set_failed(counts.failed() + (status == v1::TEST_FAIL));
      counts.set_skipped(counts.skipped() + (status == v1::TEST_SKIP));
      counts.set_errors(counts.errors() + (status == v1::TEST_ERROR));
      v1::SequencedItem& item = items.emplace_back();
      item.set_seq(++seq_[host]);
      v1::TestResultReport* r = item.mutable_test_result();
      r->set_command_id(cmd.command_id());
      r->mutable_result()->set_suite(cmd.step().test().suite());
      r->mutable_result()->set_section(cmd.step().test().section());
      r->mutable_result()->set_name(name);
      r->mutable_result()->set_status(status);
      r->mutable_result()->set_duration_ms(ms);
      r->mutable_result()->set_run(cmd.step().test().run());
      failed |= status == v1::TEST_FAIL || status == v1::TEST_ERROR;
    }
    v1::SequencedItem& fin = items.emplace_back();
    fin.set_seq(++seq_[host]);
    fin.mutable_finished()->set_command_id(cmd.command_id());
    fin.mutable_finished()->mutable_result()->set_verdict(verdict != v1::VERDICT_UNSPECIFIED
                                                              ? verdict
                                                          : failed ? v1::FAIL
                                                                   : v1::PASS);
    *fin.mutable_finished()->mutable_result()->mutable_tests() = counts;
    auto out = store_->ApplySequenced(host, items, 2000);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : ApplyOutcome();
  }

  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
  std::map<std::string, uint64_t> seq_;
};

// Validates that a failed test is re-run on the same host `reruns` times (and only it), that each
// run is stored with its run number and the host's kernel, and that the job's progress counts
// first runs and re-runs apart.
TEST_F(TestJobsTest, FailuresAreRerunOnTheSameHost) {
  Register("h1");
  auto created = store_->CreateJob(ExecTests({"h1"}, {"a", "b", "c"}, 0, 2), {"h1"}, "t", 1000, "");
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_EQ(created->second.size(), 1u);
  const v1::Command first = created->second[0].command;
  EXPECT_EQ(first.step().test().run(), 1u);
  ApplyOutcome out = Report(
      "h1", first, {{"a", v1::TEST_PASS, 10}, {"b", v1::TEST_FAIL, 20}, {"c", v1::TEST_SKIP, 0}});
  ASSERT_EQ(out.dispatch.size(), 1u);
  v1::Command rerun = out.dispatch[0].command;
  EXPECT_EQ(out.dispatch[0].host_id, "h1");
  EXPECT_EQ(rerun.step().test().run(), 2u);
  ASSERT_EQ(rerun.step().test().tests_size(), 1);
  EXPECT_EQ(rerun.step().test().tests(0), "b");
  out = Report("h1", rerun, {{"b", v1::TEST_PASS, 21}});
  ASSERT_EQ(out.dispatch.size(), 1u);  // run 3: the same list again, for a rate over 3 runs
  rerun = out.dispatch[0].command;
  EXPECT_EQ(rerun.step().test().run(), 3u);
  out = Report("h1", rerun, {{"b", v1::TEST_FAIL, 19}});
  EXPECT_TRUE(out.dispatch.empty());
  ASSERT_EQ(out.finished_jobs.size(), 1u);

  auto results = store_->JobResults(created->first.id());
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 5u);
  int b_runs = 0, b_failed = 0;
  for (const v1::TestRecord& r : *results) {
    EXPECT_EQ(r.build(), "uname:6.1.0-1-amd64");
    EXPECT_EQ(r.kernel_release(), "6.1.0-1-amd64");
    EXPECT_EQ(r.host_name(), "h1");
    if (r.result().name() == "b") {
      ++b_runs;
      b_failed += r.result().status() == v1::TEST_FAIL;
    }
  }
  EXPECT_EQ(b_runs, 3);
  EXPECT_EQ(b_failed, 2);
  auto job = store_->GetJob(created->first.id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->verdict(), v1::FAIL);
  EXPECT_EQ(job->tests().total(), 3u);
  EXPECT_EQ(job->tests().done(), 3u);
  EXPECT_EQ(job->tests().failed(), 1u);
  EXPECT_EQ(job->tests().skipped(), 1u);
  EXPECT_EQ(job->tests().reruns(), 2u);
  EXPECT_EQ(job->tests().eta_ms(), 0);
}

// Validates that a test step that ran nothing (every test skipped) does not stop the host's later
// steps, and makes the job NOTHING_RAN unless a later one failed, which wins.
TEST_F(TestJobsTest, NothingRanGoesOnAndEndsTheJobNothingRan) {
  Register("h1");
  for (v1::TestStatus second : {v1::TEST_PASS, v1::TEST_FAIL}) {
    v1::JobSpec spec = ExecTests({"h1"}, {"fw"}, 0, 0);
    *spec.add_steps() = spec.steps(0);
    auto created = store_->CreateJob(spec, {"h1"}, "t", 1000, "");
    ASSERT_TRUE(created.ok()) << created.status();
    ApplyOutcome out =
        Report("h1", created->second[0].command, {{"fw", v1::TEST_SKIP, 0}}, v1::NOTHING_RAN);
    ASSERT_EQ(out.dispatch.size(), 1u);  // the second test step
    EXPECT_NE(out.dispatch[0].command.command_id(), created->second[0].command.command_id());
    out = Report("h1", out.dispatch[0].command, {{"fw", second, 10}});
    ASSERT_EQ(out.finished_jobs.size(), 1u);
    auto job = store_->GetJob(created->first.id());
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->verdict(), second == v1::TEST_FAIL ? v1::FAIL : v1::NOTHING_RAN)
        << v1::TestStatus_Name(second);
  }
}

// Validates that a sharded step whose tests were all skipped ends the job NOTHING_RAN, though
// each of its commands (one test each) passed, and PASS when the step has skips_ok.
TEST_F(TestJobsTest, ShardedStepThatOnlySkippedRanNothing) {
  Register("h1");
  for (bool skips_ok : {false, true}) {
    v1::JobSpec spec = ExecTests({"h1"}, {"a", "b"}, 1, 0);
    spec.mutable_steps(0)->mutable_test()->set_skips_ok(skips_ok);
    auto created = store_->CreateJob(spec, {"h1"}, "t", 1000, "");
    ASSERT_TRUE(created.ok()) << created.status();
    v1::Command cmd = created->second[0].command;
    for (int i = 0; i < 2; ++i) {
      ApplyOutcome out = Report("h1", cmd, {{cmd.step().test().tests(0), v1::TEST_SKIP, 0}});
      if (i == 0) {
        ASSERT_EQ(out.dispatch.size(), 1u);
        cmd = out.dispatch[0].command;
      } else {
        ASSERT_EQ(out.finished_jobs.size(), 1u);
      }
    }
    auto job = store_->GetJob(created->first.id());
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->verdict(), skips_ok ? v1::PASS : v1::NOTHING_RAN) << skips_ok;
  }
}

// Validates that a resent batch stores each result once, and that the outcome names each result
// stored (suite and status, for kfleet_test_results_total) once too.
TEST_F(TestJobsTest, ResultsAreStoredOnce) {
  Register("h1");
  auto created = store_->CreateJob(ExecTests({"h1"}, {"a"}, 0, 0), {"h1"}, "t", 1000, "");
  ASSERT_TRUE(created.ok());
  const v1::Command cmd = created->second[0].command;
  v1::SequencedItem item;
  item.set_seq(1);
  item.mutable_test_result()->set_command_id(cmd.command_id());
  item.mutable_test_result()->mutable_result()->set_suite("exec");
  item.mutable_test_result()->mutable_result()->set_name("a");
  item.mutable_test_result()->mutable_result()->set_status(v1::TEST_PASS);
  auto first = store_->ApplySequenced("h1", {item}, 2000);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->test_results.size(), 1u);
  EXPECT_EQ(first->test_results[0].suite, "exec");
  EXPECT_EQ(first->test_results[0].status, v1::TEST_PASS);
  auto again = store_->ApplySequenced("h1", {item}, 2000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->skipped_items, 1);
  EXPECT_TRUE(again->test_results.empty());
  // The same result under a new seq (an agent that lost its outbox state) is not stored again.
  item.set_seq(2);
  auto renumbered = store_->ApplySequenced("h1", {item}, 2000);
  ASSERT_TRUE(renumbered.ok());
  EXPECT_TRUE(renumbered->test_results.empty());
  // Another host cannot report for it.
  Register("h2");
  item.set_seq(1);
  auto foreign = store_->ApplySequenced("h2", {item}, 2000);
  ASSERT_TRUE(foreign.ok());
  EXPECT_TRUE(foreign->test_results.empty());
  auto results = store_->JobResults(created->first.id());
  ASSERT_TRUE(results.ok());
  EXPECT_EQ(results->size(), 1u);
}

// Validates the pull model of a sharded step: each free host takes the longest test left by
// stored durations (never-run tests first), the queue drains over the hosts, and the job ends
// when every test has a result.
TEST_F(TestJobsTest, ShardedStepHandsOutLongestFirst) {
  Register("h1");
  Register("h2");
  // History: durations of t1..t4 from an earlier job on h1.
  auto earlier =
      store_->CreateJob(ExecTests({"h1"}, {"t1", "t2", "t3", "t4"}, 0, 0), {"h1"}, "t", 1000, "");
  ASSERT_TRUE(earlier.ok());
  Report("h1", earlier->second[0].command,
         {{"t1", v1::TEST_PASS, 100},
          {"t2", v1::TEST_PASS, 400},
          {"t3", v1::TEST_PASS, 300},
          {"t4", v1::TEST_PASS, 200}});

  auto created = store_->CreateJob(ExecTests({"h1", "h2"}, {"t1", "t2", "t3", "t4", "new"}, 2, 0),
                                   {"h1", "h2"}, "t", 1000, "");
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_EQ(created->second.size(), 2u);
  std::map<std::string, v1::Command> running;  // host -> command
  std::vector<std::string> order;
  for (const Dispatch& d : created->second) {
    ASSERT_EQ(d.command.step().test().tests_size(), 1);
    running[d.host_id] = d.command;
    order.push_back(d.command.step().test().tests(0));
  }
  // The test never run comes first (unknown length), then the longest.
  EXPECT_EQ(order, (std::vector<std::string>{"new", "t2"}));
  auto job = store_->GetJob(created->first.id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->tests().total(), 5u);
  EXPECT_EQ(job->tests().eta_ms(), -1);  // "new" has no history

  // h2 (t2) ends first: it takes t3, then t4; h1 ends "new" and takes t1.
  ApplyOutcome out = Report("h2", running["h2"], {{"t2", v1::TEST_PASS, 400}});
  ASSERT_EQ(out.dispatch.size(), 1u);
  EXPECT_EQ(out.dispatch[0].host_id, "h2");
  EXPECT_EQ(out.dispatch[0].command.step().test().tests(0), "t3");
  running["h2"] = out.dispatch[0].command;
  out = Report("h2", running["h2"], {{"t3", v1::TEST_PASS, 300}});
  ASSERT_EQ(out.dispatch.size(), 1u);
  EXPECT_EQ(out.dispatch[0].command.step().test().tests(0), "t4");
  running["h2"] = out.dispatch[0].command;
  out = Report("h1", running["h1"], {{"new", v1::TEST_PASS, 50}});
  ASSERT_EQ(out.dispatch.size(), 1u);
  EXPECT_EQ(out.dispatch[0].command.step().test().tests(0), "t1");
  running["h1"] = out.dispatch[0].command;
  out = Report("h1", running["h1"], {{"t1", v1::TEST_PASS, 100}});
  EXPECT_TRUE(out.dispatch.empty());
  EXPECT_TRUE(out.finished_jobs.empty());  // t4 still runs on h2
  out = Report("h2", running["h2"], {{"t4", v1::TEST_PASS, 200}});
  ASSERT_EQ(out.finished_jobs.size(), 1u);
  job = store_->GetJob(created->first.id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->verdict(), v1::PASS);
  EXPECT_EQ(job->tests().done(), 5u);
}

// Validates that a host lost in the middle of a sharded step has its running test recorded as an
// error naming the console log, leaves the step, and the other host runs every test left.
TEST_F(TestJobsTest, LostHostsTestIsAnErrorAndTheRestRunsElsewhere) {
  Register("h1");
  Register("h2");
  auto created = store_->CreateJob(ExecTests({"h1", "h2"}, {"a", "b", "c", "d"}, 2, 0),
                                   {"h1", "h2"}, "t", 1000, "");
  ASSERT_TRUE(created.ok());
  std::map<std::string, v1::Command> running;
  for (const Dispatch& d : created->second) running[d.host_id] = d.command;
  std::string lost_test = running["h1"].step().test().tests(0);

  auto lost = store_->HostLost("h1", "the host went offline while the test ran", 3000);
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_TRUE(lost->dispatch.empty());  // h2 is busy; it pulls when it is free
  std::set<std::string> ran = {lost_test};
  for (int i = 0; i < 10; ++i) {
    std::string test = running["h2"].step().test().tests(0);
    ran.insert(test);
    ApplyOutcome out = Report("h2", running["h2"], {{test, v1::TEST_PASS, 10}});
    if (out.dispatch.empty()) break;
    ASSERT_EQ(out.dispatch[0].host_id, "h2");
    running["h2"] = out.dispatch[0].command;
  }
  EXPECT_EQ(ran, (std::set<std::string>{"a", "b", "c", "d"}));
  auto job = store_->GetJob(created->first.id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_DONE);
  auto results = store_->JobResults(created->first.id());
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 4u);
  for (const v1::TestRecord& r : *results) {
    if (r.result().name() == lost_test) {
      EXPECT_EQ(r.result().status(), v1::TEST_ERROR);
      EXPECT_NE(r.result().detail().find("went offline"), std::string::npos);
      EXPECT_NE(r.result().detail().find("--stream console"), std::string::npos);
      EXPECT_EQ(r.host_name(), "h1");
    } else {
      EXPECT_EQ(r.result().status(), v1::TEST_PASS);
      EXPECT_EQ(r.host_name(), "h2");
    }
  }
}

// Validates that when every host of a sharded step is lost, the tests never started are recorded
// as errors rather than dropped (and named in the outcome as results stored), and the job ends.
TEST_F(TestJobsTest, AllHostsLostLeavesNoTestUnaccounted) {
  Register("h1");
  auto created = store_->CreateJob(ExecTests({"h1"}, {"a", "b", "c"}, 1, 0), {"h1"}, "t", 1000, "");
  ASSERT_TRUE(created.ok());
  auto lost = store_->HostLost("h1", "gone", 3000);
  ASSERT_TRUE(lost.ok()) << lost.status();
  ASSERT_EQ(lost->test_results.size(), 3u);
  for (const StoredTestResult& r : lost->test_results) {
    EXPECT_EQ(r.suite, "exec");
    EXPECT_EQ(r.status, v1::TEST_ERROR);
  }
  auto results = store_->JobResults(created->first.id());
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 3u);
  for (const v1::TestRecord& r : *results) EXPECT_EQ(r.result().status(), v1::TEST_ERROR);
  auto job = store_->GetJob(created->first.id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_DONE);
}

// Validates that cancelling a job in a sharded step hands out no more tests, records no errors for
// the tests not run, and ends the job CANCELLED once the running tests report.
TEST_F(TestJobsTest, CancelStopsTheQueue) {
  Register("h1");
  Register("h2");
  auto created = store_->CreateJob(ExecTests({"h1", "h2"}, {"a", "b", "c", "d", "e"}, 2, 0),
                                   {"h1", "h2"}, "t", 1000, "");
  ASSERT_TRUE(created.ok());
  std::map<std::string, v1::Command> running;
  for (const Dispatch& d : created->second) running[d.host_id] = d.command;
  auto cancel = store_->CancelJob(created->first.id(), 1500);
  ASSERT_TRUE(cancel.ok()) << cancel.status();
  EXPECT_EQ(cancel->cancels.size(), 0u);  // both commands were still pending: cancelled at once
  ApplyOutcome out = Report("h1", running["h1"], {}, v1::CANCELLED);
  EXPECT_TRUE(out.dispatch.empty());
  auto job = store_->GetJob(created->first.id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_DONE);
  EXPECT_EQ(job->verdict(), v1::CANCELLED);
  auto results = store_->JobResults(created->first.id());
  ASSERT_TRUE(results.ok());
  EXPECT_TRUE(results->empty());
}

// Validates that a sharded step naming no tests first has one host list them, then hands them out.
TEST_F(TestJobsTest, ShardedStepWithoutTestsListsFirst) {
  Register("h1");
  Register("h2");
  v1::JobSpec spec = ExecTests({"h1", "h2"}, {}, 2, 0);
  auto created = store_->CreateJob(spec, {"h1", "h2"}, "t", 1000, "");
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(created->second.size(), 1u);
  v1::Command list = created->second[0].command;
  EXPECT_TRUE(list.step().test().list_only());
  v1::SequencedItem fin;
  fin.set_seq(1);
  fin.mutable_finished()->set_command_id(list.command_id());
  fin.mutable_finished()->mutable_result()->set_verdict(v1::PASS);
  for (const char* t : {"x", "y", "z"})
    fin.mutable_finished()->mutable_result()->add_listed_tests(t);
  auto out = store_->ApplySequenced(created->second[0].host_id, {fin}, 2000);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->dispatch.size(), 2u);  // both hosts get a test
  std::set<std::string> hosts;
  for (const Dispatch& d : out->dispatch) {
    hosts.insert(d.host_id);
    EXPECT_FALSE(d.command.step().test().list_only());
  }
  EXPECT_EQ(hosts.size(), 2u);
  auto job = store_->GetJob(created->first.id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->tests().total(), 3u);
}

// Validates that a job choosing its host by labels (hosts: {labels, count}) gets the same
// expunges as one naming it: the command waits for a host and, once given one, still carries the
// section's expunge list.
TEST_F(TestJobsTest, ExpungesReachCommandsOfLabelChosenHosts) {
  v1::ExpungeFile f;
  f.set_kernel("6.1.0");
  f.set_fs("xfs");
  f.set_section("xfs_crc");
  f.set_content("generic/475\n");
  v1::ExpungeEntry a;
  a.set_test("generic/475");
  ASSERT_TRUE(store_->PutExpunges({f}, {{a}}, false).ok());
  v1::JobSpec spec;
  (*spec.mutable_hosts()->mutable_labels())["pool"] = "local";
  spec.mutable_hosts()->set_count(1);
  v1::TestStep* t = spec.add_steps()->mutable_test();
  t->set_suite("fstests");
  t->set_section("xfs_crc");
  t->mutable_fstests()->set_tree("/src/fstests");
  t->mutable_fstests()->set_expunge_from("6.1.0/xfs");
  t->mutable_fstests()->add_expunge("generic/001");
  auto created = store_->CreateJob(spec, {}, "t", 1000, "");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->second.empty());  // no host yet
  Register("h1");
  auto dispatched = store_->AssignWaiting(2000);
  ASSERT_TRUE(dispatched.ok()) << dispatched.status();
  ASSERT_EQ(dispatched->size(), 1u);
  const v1::Command& cmd = (*dispatched)[0].command;
  EXPECT_EQ(std::vector<std::string>(cmd.step().test().fstests().expunge().begin(),
                                     cmd.step().test().fstests().expunge().end()),
            (std::vector<std::string>{"generic/001", "generic/475"}));
  // The stored command (what a reconnecting agent is sent again) has them too.
  auto job = store_->GetJob(created->first.id());
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->commands_size(), 1);
  EXPECT_EQ(job->commands(0).step().test().fstests().expunge_size(), 2);
}

// Validates expunge lists: stored content comes back byte for byte, an fstests step with
// expunge_from gets the section's tests, and a test that passed N runs in a row is a candidate.
TEST_F(TestJobsTest, ExpungesApplyAndRoundTrip) {
  Register("h1");
  v1::ExpungeFile f;
  f.set_kernel("6.1.0");
  f.set_fs("xfs");
  f.set_section("xfs_crc");
  f.set_content("# known failures\ngeneric/475 # failure rate 3/10\nxfs/076\n");
  v1::ExpungeEntry a, b;
  a.set_test("generic/475");
  a.set_comment("failure rate 3/10");
  b.set_test("xfs/076");
  ASSERT_TRUE(store_->PutExpunges({f}, {{a, b}}, false).ok());
  auto files = store_->ExpungeFiles("", "");
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].content(), f.content());

  v1::JobSpec spec;
  spec.mutable_hosts()->add_names("h1");
  v1::TestStep* t = spec.add_steps()->mutable_test();
  t->set_suite("fstests");
  t->set_section("xfs_crc");
  t->mutable_fstests()->set_tree("/src/fstests");
  t->mutable_fstests()->set_expunge_from("6.1.0/xfs");
  t->mutable_fstests()->add_expunge("generic/001");
  t->set_reruns(0);
  auto created = store_->CreateJob(spec, {"h1"}, "t", 1000, "");
  ASSERT_TRUE(created.ok());
  const v1::Command cmd = created->second[0].command;
  EXPECT_EQ(std::vector<std::string>(cmd.step().test().fstests().expunge().begin(),
                                     cmd.step().test().fstests().expunge().end()),
            (std::vector<std::string>{"generic/001", "generic/475", "xfs/076"}));

  // xfs/076 passes 2 runs in a row (run where it was not expunged): a candidate at streak 2.
  std::vector<std::tuple<std::string, v1::TestStatus, int64_t>> results = {
      {"xfs/076", v1::TEST_PASS, 5}, {"generic/475", v1::TEST_FAIL, 5}};
  Report("h1", cmd, results);
  auto second = store_->CreateJob(spec, {"h1"}, "t", 1000, "");
  ASSERT_TRUE(second.ok());
  Report("h1", second->second[0].command, results);
  auto candidates = store_->RemovalCandidates("6.1.0", "xfs", 2);
  ASSERT_TRUE(candidates.ok());
  ASSERT_EQ(candidates->size(), 1u);
  EXPECT_EQ((*candidates)[0].test(), "xfs/076");
  EXPECT_EQ((*candidates)[0].passes(), 2u);
  candidates = store_->RemovalCandidates("6.1.0", "xfs", 3);
  ASSERT_TRUE(candidates.ok());
  EXPECT_TRUE(candidates->empty());
}

}  // namespace
}  // namespace kfleet::controller

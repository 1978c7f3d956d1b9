// For tests of the test step: runs RunTestStep with processes started directly (as
// CommandManager::RunPhase does, without the book), records the reported results and the log,
// and cancels on request or when the log shows a given text. Also the checks those tests share.
#ifndef KFLEET_AGENT_SUITES_STEP_HARNESS_H_
#define KFLEET_AGENT_SUITES_STEP_HARNESS_H_

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/exec/process.h"
#include "agent/suites/test_runner.h"
#include "gtest/gtest.h"
#include "kfleet/v1/common.pb.h"

namespace kfleet::agent {

// "STATUS name" per result, in order.
inline std::vector<std::string> Summary(const std::vector<kfleet::v1::TestResult>& results) {
  std::vector<std::string> lines;
  for (const kfleet::v1::TestResult& r : results) {
    lines.push_back(absl::StrCat(kfleet::v1::TestStatus_Name(r.status()), " ", r.name()));
  }
  return lines;
}

// "SUITE SECTION" per result, in order: where each was reported.
inline std::vector<std::string> Origins(const std::vector<kfleet::v1::TestResult>& results) {
  std::vector<std::string> lines;
  for (const kfleet::v1::TestResult& r : results) {
    lines.push_back(absl::StrCat(r.suite(), " ", r.section()));
  }
  return lines;
}

class StepHarness : public OutputSink {
 public:
  StepHarness() {
    char dir[] = "/tmp/kfleet-step-XXXXXX";
    top_ = ::mkdtemp(dir);
  }
  ~StepHarness() override {
    std::error_code ec;
    std::filesystem::remove_all(top_, ec);
  }

  const std::string& top() const { return top_; }

  TestStepContext Context(kfleet::v1::ArtifactService::StubInterface* artifacts = nullptr) {
    TestStepContext ctx;
    ctx.command_id = "c-1";
    ctx.work_dir = top_ + "/work";
    ctx.cache_dir = top_ + "/cache";
    ctx.disk_dir = top_ + "/disks";  // none unless a test makes them
    ctx.log = this;
    ctx.artifacts = artifacts;
    ctx.run_phase = [this](const RunSpec& spec, OutputSink* sink) { return RunPhase(spec, sink); };
    ctx.report = [this](const kfleet::v1::TestResult& r) {
      absl::MutexLock lock(&mu_);
      results_.push_back(r);
    };
    return ctx;
  }

  kfleet::v1::CommandResult Run(const kfleet::v1::TestStep& step,
                                kfleet::v1::ArtifactService::StubInterface* artifacts = nullptr) {
    return RunTestStep(step, Context(artifacts));
  }

  // Each phase's timeout (a test step's deadline).
  void set_timeout(absl::Duration d) { timeout_ = d; }

  // Cancels the running phase (and every later one) once the log holds `text`.
  void CancelWhenLogged(std::string text) {
    absl::MutexLock lock(&mu_);
    cancel_on_ = std::move(text);
  }

  std::vector<kfleet::v1::TestResult> results() {
    absl::MutexLock lock(&mu_);
    return results_;
  }

  // Success if `r`, a step's result after CancelWhenLogged, is CANCELLED, the tests reported are
  // `summary` (see Summary), and the last of them, the one running, is an error that says the
  // test cancelled it.
  ::testing::AssertionResult CancelledWhileRunning(const kfleet::v1::CommandResult& r,
                                                   const std::vector<std::string>& summary) {
    std::vector<kfleet::v1::TestResult> got = results();
    if (r.verdict() != kfleet::v1::CANCELLED || !r.cancelled()) {
      return ::testing::AssertionFailure()
             << "the step ended " << kfleet::v1::Verdict_Name(r.verdict()) << " (" << r.detail()
             << "), not cancelled\n"
             << log();
    }
    if (Summary(got) != summary) {
      return ::testing::AssertionFailure()
             << "reported [" << absl::StrJoin(Summary(got), ", ") << "], expected ["
             << absl::StrJoin(summary, ", ") << "]\n"
             << log();
    }
    if (got.empty() || !absl::StrContains(got.back().detail(), "cancelled by the test")) {
      return ::testing::AssertionFailure() << "the running test's detail does not give the cancel";
    }
    return ::testing::AssertionSuccess();
  }
  std::string log() {
    absl::MutexLock lock(&mu_);
    return log_;
  }

  void Write(kfleet::v1::LogStream, absl::string_view data) override {
    absl::MutexLock lock(&mu_);
    log_.append(data.data(), data.size());
    if (!cancel_on_.empty() && absl::StrContains(log_, cancel_on_)) {
      cancel_on_.clear();
      CancelLocked("cancelled by the test");
    }
  }

 private:
  kfleet::v1::CommandResult RunPhase(const RunSpec& s, OutputSink* sink) {
    RunSpec spec = s;
    spec.timeout = timeout_;
    spec.kill_grace = absl::Seconds(2);
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) {
        kfleet::v1::CommandResult r;
        r.set_verdict(kfleet::v1::CANCELLED);
        r.set_cancelled(true);
        r.set_exit_code(-1);
        r.set_detail(reason_);
        return r;
      }
    }
    absl::StatusOr<std::unique_ptr<Process>> p = Process::Start(spec, sink);
    if (!p.ok()) {
      kfleet::v1::CommandResult r;
      r.set_verdict(kfleet::v1::INFRA_ERROR);
      r.set_detail(std::string(p.status().message()));
      return r;
    }
    {
      absl::MutexLock lock(&mu_);
      process_ = p->get();
      if (cancelled_) process_->Cancel(reason_);
    }
    kfleet::v1::CommandResult r = (*p)->Wait();
    absl::MutexLock lock(&mu_);
    process_ = nullptr;
    return r;
  }

  void CancelLocked(const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    cancelled_ = true;
    reason_ = reason;
    if (process_ != nullptr) process_->Cancel(reason);
  }

  std::string top_;
  absl::Duration timeout_ = absl::Minutes(2);
  absl::Mutex mu_;
  std::vector<kfleet::v1::TestResult> results_ ABSL_GUARDED_BY(mu_);
  std::string log_ ABSL_GUARDED_BY(mu_);
  std::string cancel_on_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::string reason_ ABSL_GUARDED_BY(mu_);
  Process* process_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace kfleet::agent

#endif  // KFLEET_AGENT_SUITES_STEP_HARNESS_H_

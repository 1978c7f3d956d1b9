// The kselftest suite: installed tests (run_kselftest.sh in kselftest.dir, or unpacked from the
// job's kselftest archive), or a kernel source tree, whose collections are built and installed
// (make -C tools/testing/selftests install) and then run as installed tests.
// Its TAP output streams through TapParser. The kselftest runner exits 0 even when tests fail:
// only the parsed results judge the step.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/suites/suite_run.h"
#include "agent/suites/tap.h"
#include "common/artifact_client.h"
#include "common/duration.h"
#include "common/files.h"
#include "common/sha256.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;

constexpr char kRunner[] = "run_kselftest.sh";
constexpr uint64_t kMaxTapCopyBytes = 256 << 20;

// What to run: -t COLLECTION:TEST for tests that name one, -c COLLECTION for the rest and for
// the targets when no tests are named.
struct Selection {
  std::vector<std::string> collections;
  std::vector<std::string> tests;  // COLLECTION:TEST
};

// The runnable test behind a result's name: a subtest ("kcmp:kcmp_test/#1",
// "seccomp:seccomp_bpf/TRAP.dfl") runs as the test that prints it ("kcmp:kcmp_test"), since the
// runner knows only whole programs. A collection may hold "/" ("filesystems/binderfs"), a test's
// own name never does (the runner names it by its basename).
std::string Runnable(absl::string_view name) {
  const size_t colon = name.find(':');
  if (colon == absl::string_view::npos) return std::string(name);
  return std::string(name.substr(0, name.find('/', colon)));
}

Selection Select(const v1::TestStep& step) {
  Selection s;
  if (step.tests().empty()) {
    s.collections.assign(step.kselftest().targets().begin(), step.kselftest().targets().end());
    return s;
  }
  for (const std::string& name : step.tests()) {
    std::string t = Runnable(name);
    std::vector<std::string>& list = absl::StrContains(t, ':') ? s.tests : s.collections;
    if (std::find(list.begin(), list.end(), t) == list.end()) list.push_back(std::move(t));
  }
  return s;
}

// The collections a run needs built: the selection's, none for "all".
std::vector<std::string> Collections(const Selection& s) {
  std::set<std::string> all(s.collections.begin(), s.collections.end());
  for (const std::string& t : s.tests) all.insert(t.substr(0, t.find(':')));
  return std::vector<std::string>(all.begin(), all.end());
}

bool Selected(const Selection& s, absl::string_view entry) {
  if (s.collections.empty() && s.tests.empty()) return true;
  for (const std::string& t : s.tests) {
    if (entry == t) return true;
  }
  const std::string collection(entry.substr(0, entry.find(':')));
  return std::find(s.collections.begin(), s.collections.end(), collection) != s.collections.end();
}

std::map<std::string, std::string> Env(const v1::TestStep& step) {
  std::map<std::string, std::string> env(step.env().begin(), step.env().end());
  if (!step.kselftest().timeout().empty()) {
    // Read by kselftest/runner.sh since Linux 6.6 (run_kselftest.sh -o); older runners keep
    // their settings files' timeouts.
    absl::StatusOr<absl::Duration> d = ParseDuration(step.kselftest().timeout());
    if (d.ok()) env["kselftest_override_timeout"] = absl::StrCat(absl::ToInt64Seconds(*d));
  }
  return env;
}

// Where run_kselftest.sh is under an unpacked archive: its top, or a single directory in it.
std::string FindRunnerDir(const std::string& top) {
  if (IsExecutableFile(top + "/" + kRunner)) return top;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(top, ec)) {
    std::string dir = entry.path().string();
    if (entry.is_directory(ec) && IsExecutableFile(dir + "/" + kRunner)) return dir;
  }
  return "";
}

// kselftest/runner.sh runs each test under `/usr/bin/timeout --foreground`, an option busybox's
// timeout lacks (tiny guests): there every test would fail with "unrecognized option". On such a
// host the unpacked runner is made to call timeout without it (the inner timeout still applies).
void AdaptRunnerToBusyboxTimeout(const std::string& dir, const TestStepContext& ctx) {
  std::error_code ec;
  std::filesystem::path timeout = std::filesystem::canonical("/usr/bin/timeout", ec);
  if (ec || timeout.filename() != "busybox") return;
  const std::string runner = dir + "/kselftest/runner.sh";
  absl::StatusOr<std::string> text = ReadFile(runner);
  if (!text.ok() || !absl::StrContains(*text, "/usr/bin/timeout --foreground")) return;
  std::string fixed =
      absl::StrReplaceAll(*text, {{"/usr/bin/timeout --foreground", "/usr/bin/timeout"}});
  if (absl::Status s = WriteFileAtomic(runner, fixed); !s.ok()) return;
  ::chmod(runner.c_str(), 0755);
  Say(ctx, "busybox timeout on this host: kselftest/runner.sh calls it without --foreground");
}

// Downloads the archive (verified) and unpacks it; the directory with run_kselftest.sh, or the
// step's result when that failed.
absl::StatusOr<std::string> Unpack(const v1::TestStep& step, const TestStepContext& ctx,
                                   v1::CommandResult* failed) {
  const v1::Artifact& a = step.kselftest().archive();
  if (ctx.artifacts == nullptr) {
    *failed = InfraError("kselftest archive mode needs the artifact store, which this agent lacks");
    return absl::FailedPreconditionError("no artifact store");
  }
  const std::string file = ctx.work_dir + "/kselftest.tar.gz";
  TransferOptions transfer;
  transfer.command_id = ctx.command_id;
  if (absl::Status s = DownloadFile(*ctx.artifacts, a.sha256(), file, transfer); !s.ok()) {
    *failed = InfraError(
        absl::StrCat("download of ", a.name().empty() ? "kselftest.tar.gz" : a.name(), " (sha256 ",
                     a.sha256().substr(0, 12), ") from the artifact store failed: ", s.message(),
                     "; rebuild it with the job's kernel_build step"));
    return s;
  }
  Say(ctx, absl::StrCat("downloaded ", a.name(), " (", a.size(), " bytes, sha256 verified)"));
  const std::string top = ctx.work_dir + "/kselftest";
  if (absl::Status s = MakeDirs(top); !s.ok()) {
    *failed = InfraError(std::string(s.message()));
    return s;
  }
  RunSpec spec;
  // Plain options only: guests have busybox tar.
  spec.argv = {"tar", "-xzf", file, "-C", top};
  PhaseOutput out = RunHelper(ctx, spec);
  if (out.result.verdict() != v1::PASS) {
    *failed = HelperFailure("unpacking kselftest.tar.gz", out,
                            "the archive is damaged, or tar is missing");
    return absl::InternalError("unpack failed");
  }
  std::string dir = FindRunnerDir(top);
  if (dir.empty()) {
    *failed = InfraError(absl::StrCat("the kselftest archive has no ", kRunner,
                                      ": it must hold installed kselftests (make -C "
                                      "tools/testing/selftests install)"));
    return absl::NotFoundError("no runner");
  }
  AdaptRunnerToBusyboxTimeout(dir, ctx);
  return dir;
}

// The collections of `sel` that kselftest-list.txt of the installed tests in `dir` lists no test
// of: they failed to build (the kselftest Makefile goes on with the others) or have no test to
// run. run_kselftest.sh -c would stop at the first of them without running anything.
std::vector<std::string> NotInstalled(const std::string& dir, const Selection& sel) {
  absl::StatusOr<std::string> list = ReadFile(dir + "/kselftest-list.txt");
  std::set<std::string> listed;
  if (list.ok()) {
    for (absl::string_view line : absl::StrSplit(*list, '\n', absl::SkipEmpty())) {
      listed.insert(std::string(line.substr(0, line.find(':'))));
    }
  }
  std::vector<std::string> missing;
  for (const std::string& c : Collections(sel)) {
    if (listed.count(c) == 0) missing.push_back(c);
  }
  return missing;
}

// Builds the collections `sel` needs from the tree whose selftests are `selftests` and installs
// them into the work dir (make install, as CI and kdevops do); the install directory or the
// step's result. Installed, a test's scripts find the programs built beside them: under
// `make run_tests` with O= they run from the source tree and do not (futex's run.sh, rseq's
// run_param_test.sh). The objects (O=) are kept in the cache per tree, so a later step on it, a
// re-run above all, compiles only what changed; flock makes the steps that build one tree wait
// for each other. Each step installs into its own work dir and runs from there.
absl::StatusOr<std::string> Install(const v1::TestStep& step, const TestStepContext& ctx,
                                    const std::string& selftests, const Selection& sel,
                                    v1::CommandResult* failed) {
  std::error_code ec;
  std::filesystem::path tree = std::filesystem::canonical(step.kselftest().tree(), ec);
  if (ec) tree = step.kselftest().tree();
  absl::StatusOr<Sha256> hasher = Sha256::Create();
  if (!hasher.ok()) {
    *failed = InfraError(std::string(hasher.status().message()));
    return hasher.status();
  }
  hasher->Update(tree.string());
  absl::StatusOr<std::string> key = hasher->FinishHex();
  if (!key.ok()) {
    *failed = InfraError(std::string(key.status().message()));
    return key.status();
  }
  const std::string cache = ctx.cache_dir.empty() ? ctx.work_dir + "/cache" : ctx.cache_dir;
  const std::string build = absl::StrCat(cache, "/kselftest-", key->substr(0, 16));
  if (absl::Status s = MakeDirs(build); !s.ok()) {
    *failed = InfraError(absl::StrCat("kselftest build directory ", build, ": ", s.message()));
    return s;
  }
  const std::string install = ctx.work_dir + "/kselftest";
  std::vector<std::string> collections = Collections(sel);
  Say(ctx, absl::StrCat("building kselftests ",
                        collections.empty() ? "(all)" : absl::StrJoin(collections, " "), " of ",
                        tree.string(), " in ", build, ", installing into ", install));
  RunSpec spec;
  spec.argv = {"flock",
               build + "/lock",
               "make",
               "-C",
               selftests,
               absl::StrCat("-j", std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN))),
               absl::StrCat("O=", build, "/out"),
               absl::StrCat("INSTALL_PATH=", install)};
  if (!collections.empty()) {
    spec.argv.push_back(absl::StrCat("TARGETS=", absl::StrJoin(collections, " ")));
  }
  spec.argv.push_back("install");
  spec.dir = ctx.work_dir;
  spec.env = Env(step);
  PhaseOutput out = RunHelper(ctx, spec);
  if (out.result.verdict() != v1::PASS) {
    *failed = HelperFailure("building and installing kselftests (make install)", out,
                            "check the tree and the collections' names, and that make, rsync and "
                            "flock are installed");
    return absl::InternalError("install failed");
  }
  if (!IsExecutableFile(install + "/" + kRunner)) {
    *failed = InfraError(absl::StrCat("make install of the kselftests of ", tree.string(),
                                      " made no ", kRunner, " in ", install,
                                      ": check the tree's tools/testing/selftests/Makefile"));
    return absl::NotFoundError("no runner");
  }
  if (std::vector<std::string> missing = NotInstalled(install, sel); !missing.empty()) {
    *failed = InfraError(absl::StrCat(
        "kselftest.tree ", tree.string(), ": make install installed no tests of ",
        absl::StrJoin(missing, ", "),
        " (none in kselftest-list.txt): the collection failed to build (make's output is in the "
        "log) or lists no test to run; fix its build or leave it out of the step"));
    return absl::NotFoundError("collection not installed");
  }
  return install;
}

v1::CommandResult List(const v1::TestStep& step, const TestStepContext& ctx, const std::string& dir,
                       const Selection& sel) {
  RunSpec spec;
  spec.argv = {dir + "/" + kRunner, "-l"};
  spec.dir = dir;
  spec.env = Env(step);
  PhaseOutput out = RunHelper(ctx, spec);
  if (out.result.verdict() != v1::PASS) {
    return HelperFailure(absl::StrCat(kRunner, " -l"), out, "");
  }
  v1::CommandResult r;
  r.set_verdict(v1::PASS);
  r.set_exit_code(0);
  for (absl::string_view line : absl::StrSplit(out.stdout_text, '\n', absl::SkipEmpty())) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::StrContains(line, ':') && Selected(sel, line)) r.add_listed_tests(std::string(line));
  }
  return r;
}

}  // namespace

v1::CommandResult RunKselftestSuite(const v1::TestStep& step, const TestStepContext& ctx) {
  const absl::Time start = absl::Now();
  const v1::KselftestOptions& o = step.kselftest();
  const Selection sel = Select(step);
  RunSpec spec;
  spec.env = Env(step);
  std::string dir;  // installed tests, run by run_kselftest.sh
  if (!o.dir().empty()) {
    dir = o.dir();
    if (!IsExecutableFile(dir + "/" + kRunner)) {
      return InfraError(absl::StrCat("kselftest.dir ", dir, " has no executable ", kRunner,
                                     ": install kselftests there (make -C tools/testing/selftests "
                                     "install INSTALL_PATH=",
                                     dir, ") or give kselftest.tree"));
    }
  } else if (!o.archive().sha256().empty()) {
    v1::CommandResult failed;
    absl::StatusOr<std::string> unpacked = Unpack(step, ctx, &failed);
    if (!unpacked.ok()) return failed;
    dir = *unpacked;
  } else if (!o.tree().empty()) {
    const std::string selftests = o.tree() + "/tools/testing/selftests";
    if (!std::filesystem::exists(selftests + "/Makefile")) {
      return InfraError(absl::StrCat("kselftest.tree ", o.tree(),
                                     " is not a kernel source tree (no tools/testing/selftests/"
                                     "Makefile): point it at one"));
    }
    v1::CommandResult failed;
    absl::StatusOr<std::string> installed = Install(step, ctx, selftests, sel, &failed);
    if (!installed.ok()) return failed;
    dir = *installed;
  } else {
    return InfraError(
        "kselftest step needs kselftest.dir (installed tests with run_kselftest.sh), "
        "kselftest.tree (a kernel source tree) or a kselftest archive from the job's "
        "kernel_build");
  }
  if (step.list_only()) return List(step, ctx, dir, sel);
  spec.argv = {dir + "/" + kRunner};
  for (const std::string& c : sel.collections) spec.argv.insert(spec.argv.end(), {"-c", c});
  for (const std::string& t : sel.tests) spec.argv.insert(spec.argv.end(), {"-t", t});
  spec.dir = dir;

  TestReporter reporter(step, "kselftest", step.section(), ctx);
  TapParser parser("kselftest");
  SuiteSink sink(ctx.log, [&](absl::string_view line) {
    for (TestResult& r : parser.FeedLine(line, absl::Now())) reporter.Report(std::move(r));
  });
  const std::string tap = ctx.work_dir + "/kselftest.tap";
  const bool copied = sink.CopyStdoutTo(tap, kMaxTapCopyBytes);
  v1::CommandResult phase = ctx.run_phase(spec, &sink);
  sink.Finish();
  if (Interrupted(phase)) reporter.SetInterrupted(phase.detail());
  for (TestResult& r : parser.Finish()) reporter.Report(std::move(r));
  if (copied) UploadResultFile(ctx, tap, "kselftest.tap");
  v1::CommandResult total;
  AddUsage(phase, &total);
  return StepResult(phase, total, reporter,
                    absl::StrCat("kselftest printed no test result (", spec.argv[0],
                                 "); check the collections' names and the tree"),
                    sink.StderrTail(), start);
}

}  // namespace kfleet::agent

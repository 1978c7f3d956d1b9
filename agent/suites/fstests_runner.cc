// The fstests suite: a local.config of one section (FSTYP and the step's config; test and scratch
// devices default to loop devices over sparse files, and a TEST_DEV kfleet provides gets a file
// system first), then ./check -s SECTION in the tree with RESULT_BASE in the work directory.
// check's stdout streams through FstestsOutputParser; result.xml and check.log, read at the end,
// add the tests stdout did not show. Stored files are named run<N>+<path under RESULT_BASE>, and a
// failure's detail names them instead of the work directory, which goes with the command.
#include <sys/mount.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/suites/fstests_results.h"
#include "agent/suites/loop_device.h"
#include "agent/suites/suite_run.h"
#include "common/files.h"
#include "common/sha256.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;

constexpr uint64_t kDefaultLoopMib = 4096;

bool IsGitUrl(absl::string_view tree) {
  if (absl::StrContains(tree, "://")) return true;
  // scp-like user@host:path
  size_t colon = tree.find(':');
  return !absl::StartsWith(tree, "/") && !absl::StartsWith(tree, ".") &&
         colon != absl::string_view::npos &&
         tree.substr(0, colon).find('/') == absl::string_view::npos;
}

bool IsSectionName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

// A tree cloned from `url` at `ref` and built with make, once: later steps with the same URL
// and ref reuse it. The tree's directory, or the step's result when that failed.
absl::StatusOr<std::string> CloneAndBuild(const v1::FstestsOptions& o, const TestStepContext& ctx,
                                          v1::CommandResult* failed) {
  absl::StatusOr<Sha256> hasher = Sha256::Create();
  if (!hasher.ok()) return hasher.status();
  hasher->Update(absl::StrCat(o.tree(), "\n", o.ref()));
  absl::StatusOr<std::string> key = hasher->FinishHex();
  if (!key.ok()) return key.status();
  const std::string cache = ctx.cache_dir.empty() ? ctx.work_dir + "/cache" : ctx.cache_dir;
  const std::string dir = absl::StrCat(cache, "/fstests-", key->substr(0, 16));
  const std::string built = dir + "/.kfleet-built";
  if (std::filesystem::exists(built)) {
    Say(ctx, absl::StrCat("fstests from ", o.tree(), " already built in ", dir));
    return dir;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (absl::Status s = MakeDirs(cache); !s.ok()) {
    *failed = InfraError(std::string(s.message()));
    return s;
  }
  std::vector<std::pair<std::string, RunSpec>> phases;
  RunSpec clone;
  clone.argv = {"git", "clone", "--quiet", o.tree(), dir};
  phases.emplace_back("git clone of " + o.tree(), clone);
  if (!o.ref().empty()) {
    RunSpec checkout;
    checkout.argv = {"git", "-C", dir, "checkout", "--quiet", o.ref()};
    phases.emplace_back("git checkout of " + o.ref(), checkout);
  }
  RunSpec make;
  make.argv = {"make", "-C", dir,
               absl::StrCat("-j", std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)))};
  phases.emplace_back("building fstests (make)", make);
  for (const auto& [what, spec] : phases) {
    PhaseOutput out = RunHelper(ctx, spec);
    if (out.result.verdict() != v1::PASS) {
      *failed = HelperFailure(what, out,
                              "check fstests.tree and fstests.ref, and that git, make and "
                              "fstests' build dependencies are installed");
      return absl::InternalError("clone failed");
    }
  }
  if (absl::Status s = WriteFileAtomic(built, ""); !s.ok()) {
    *failed = InfraError(std::string(s.message()));
    return s;
  }
  return dir;
}

// The tests `check -n` lists: lines that start with a test name, not expunged.
void AddListed(absl::string_view output, v1::CommandResult* r) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.empty() || absl::StrContains(line, "[expunged]")) continue;
    absl::string_view name = words[0];
    size_t slash = name.find('/');
    bool ok = slash != absl::string_view::npos && slash > 0 && slash + 1 < name.size() &&
              name.find('/', slash + 1) == absl::string_view::npos;
    for (char c : name) ok = ok && (absl::ascii_isalnum(c) || c == '/' || c == '_' || c == '-');
    if (ok) r->add_listed_tests(std::string(name));
  }
}

// check's stdout through FstestsOutputParser, keeping its last lines: when check stops before its
// first test, they are its own error (a mount that failed, a missing tool).
class CheckOutput {
 public:
  std::vector<TestResult> Feed(absl::string_view chunk) {
    absl::string_view line = absl::StripAsciiWhitespace(chunk);
    if (!line.empty()) {
      tail_.emplace_back(line.substr(0, 512));
      if (tail_.size() > kTailLines) tail_.pop_front();
    }
    return parser_.Feed(chunk);
  }
  std::vector<TestResult> Finish() { return parser_.Finish(); }
  std::string Tail() const { return absl::StrJoin(tail_, "\n"); }

 private:
  static constexpr size_t kTailLines = 12;
  FstestsOutputParser parser_;
  std::deque<std::string> tail_;
};

// The result when check stopped before its first test: its own words first (the cause), then
// the fix.
v1::CommandResult CheckStopped(const v1::CommandResult& phase, const std::string& stdout_tail,
                               const std::string& stderr_tail) {
  std::string said = stdout_tail;
  if (!stderr_tail.empty()) absl::StrAppend(&said, said.empty() ? "" : "\n", stderr_tail);
  std::string detail =
      absl::StrCat("fstests check stopped before its first test (", phase.detail(), ")");
  if (!said.empty()) absl::StrAppend(&detail, ":\n", said);
  absl::StrAppend(&detail,
                  "\nfix what check says above (devices, mounts, tools, users), then run again");
  v1::CommandResult r = InfraError(std::move(detail));
  r.set_exit_code(phase.exit_code());
  return r;
}

}  // namespace

v1::CommandResult RunFstestsSuite(const v1::TestStep& step, const TestStepContext& ctx) {
  const absl::Time start = absl::Now();
  const v1::FstestsOptions& o = step.fstests();
  if (o.tree().empty()) {
    return InfraError(
        "fstests step needs fstests.tree: a built fstests (xfstests-dev) tree on the host, or its "
        "git URL");
  }
  std::string tree = o.tree();
  if (IsGitUrl(tree)) {
    v1::CommandResult failed;
    absl::StatusOr<std::string> built = CloneAndBuild(o, ctx, &failed);
    if (!built.ok())
      return failed.verdict() == v1::VERDICT_UNSPECIFIED
                 ? InfraError(std::string(built.status().message()))
                 : failed;
    tree = *built;
  }
  if (!IsExecutableFile(tree + "/check")) {
    return InfraError(absl::StrCat("fstests.tree ", tree,
                                   " has no executable ./check: point it at an fstests "
                                   "(xfstests-dev) tree built with make"));
  }
  const std::string section = !step.section().empty() ? step.section()
                              : !o.fstype().empty()   ? o.fstype()
                                                      : "kfleet";
  if (!IsSectionName(section)) {
    return InfraError(absl::StrCat("test step section \"", section,
                                   "\" cannot name an fstests config section: use [A-Za-z0-9_-]"));
  }
  std::map<std::string, std::string> config(o.config().begin(), o.config().end());
  for (const auto& [key, value] : config) {
    if (absl::Status s = CheckConfigValue(key, value); !s.ok()) {
      return InfraError(absl::StrCat("fstests config: ", s.message()));
    }
  }
  const std::string results = ctx.work_dir + "/results";
  config.emplace("TEST_DIR", ctx.work_dir + "/mnt/test");
  config.emplace("SCRATCH_MNT", ctx.work_dir + "/mnt/scratch");
  for (const char* mnt : {"TEST_DIR", "SCRATCH_MNT"}) {
    if (absl::Status s = MakeDirs(config[mnt]); !s.ok()) {
      return InfraError(absl::StrCat("fstests ", mnt, ": ", s.message()));
    }
  }
  // Loop devices live until this function returns, after check ended and its mounts are gone.
  std::vector<LoopDevice> loops;
  const bool fresh_test_dev = config.count("TEST_DEV") == 0;
  const uint64_t loop_mib = o.loop_size_mib() == 0 ? kDefaultLoopMib : o.loop_size_mib();
  for (const char* dev : {"TEST_DEV", "SCRATCH_DEV"}) {
    if (config.count(dev) > 0) continue;
    // A guest's extra disks named test and scratch (pool `disks:`), else a loop device.
    std::string disk =
        absl::StrCat(ctx.disk_dir, "/virtio-", std::string(dev) == "TEST_DEV" ? "test" : "scratch");
    if (::access(disk.c_str(), F_OK) == 0) {
      Say(ctx, absl::StrCat(dev, " is ", disk, " (the guest's extra disk)"));
      config[dev] = disk;
      config.emplace("RECREATE_TEST_DEV", "true");  // an empty disk holds no file system yet
      continue;
    }
    absl::StatusOr<LoopDevice> loop = LoopDevice::Create(
        absl::StrCat(ctx.work_dir, "/", absl::AsciiStrToLower(dev), ".img"), loop_mib << 20);
    if (!loop.ok()) {
      return InfraError(absl::StrCat("fstests ", dev, " (a loop device over a ", loop_mib,
                                     " MiB sparse file): ", loop.status().message()));
    }
    Say(ctx, absl::StrCat(dev, " is ", loop->path(), " (", loop_mib, " MiB sparse file)"));
    config[dev] = loop->path();
    loops.push_back(*std::move(loop));
    config.emplace("RECREATE_TEST_DEV", "true");  // a new device holds no file system yet
  }
  if (fresh_test_dev) {
    // check mounts TEST_DEV (to learn its file system) before it recreates it: a device that
    // holds none yet stops it at once with "wrong fs type".
    absl::StatusOr<std::vector<std::string>> argv = MkfsArgv(o.fstype(), config["TEST_DEV"]);
    if (!argv.ok()) return InfraError(std::string(argv.status().message()));
    RunSpec mkfs;
    mkfs.argv = *std::move(argv);
    mkfs.env.insert(step.env().begin(), step.env().end());
    Say(ctx, absl::StrCat("a new file system on TEST_DEV: ", absl::StrJoin(mkfs.argv, " ")));
    PhaseOutput out = RunHelper(ctx, mkfs);
    if (out.result.verdict() != v1::PASS) {
      return HelperFailure(
          absl::StrCat("mkfs of TEST_DEV ", config["TEST_DEV"]), out,
          absl::StrCat("install ", mkfs.argv[0], " (xfsprogs for xfs, e2fsprogs for ext4), or ",
                       "set TEST_DEV in the step's fstests config to a device that holds a file "
                       "system"));
    }
  }
  std::string local = absl::StrCat("[", section, "]\n");
  if (!o.fstype().empty()) absl::StrAppend(&local, "FSTYP=", o.fstype(), "\n");
  for (const auto& [key, value] : config) absl::StrAppend(&local, key, "=\"", value, "\"\n");
  absl::StrAppend(&local, "RESULT_BASE=\"", results, "\"\n");
  const std::string local_config = ctx.work_dir + "/local.config";
  if (absl::Status s = WriteFileAtomic(local_config, local); !s.ok()) {
    return InfraError(std::string(s.message()));
  }

  RunSpec spec;
  spec.argv = {"./check", "-s", section, "-R", "xunit"};
  if (step.list_only()) spec.argv.push_back("-n");
  if (!o.expunge().empty()) {
    const std::string file = ctx.work_dir + "/expunge.list";
    std::string text;
    for (const std::string& t : o.expunge()) absl::StrAppend(&text, t, "\n");
    if (absl::Status s = WriteFileAtomic(file, text); !s.ok()) {
      return InfraError(std::string(s.message()));
    }
    spec.argv.insert(spec.argv.end(), {"-E", file});
  }
  if (!o.groups().empty())
    spec.argv.insert(spec.argv.end(), {"-g", absl::StrJoin(o.groups(), ",")});
  if (!o.exclude_groups().empty()) {
    spec.argv.insert(spec.argv.end(), {"-x", absl::StrJoin(o.exclude_groups(), ",")});
  }
  spec.argv.insert(spec.argv.end(), step.tests().begin(), step.tests().end());
  spec.env.insert(step.env().begin(), step.env().end());
  spec.env["HOST_OPTIONS"] = local_config;
  spec.env["RESULT_BASE"] = results;
  spec.dir = tree;
  Say(ctx, absl::StrCat("fstests in ", tree, ": ", absl::StrJoin(spec.argv, " ")));

  if (step.list_only()) {
    PhaseOutput out = RunHelper(ctx, spec);
    if (out.result.verdict() != v1::PASS) {
      return HelperFailure("check -n", out, "");
    }
    v1::CommandResult r;
    r.set_verdict(v1::PASS);
    r.set_exit_code(0);
    AddListed(out.stdout_text, &r);
    return r;
  }

  TestReporter reporter(step, kFstestsSuite, section, ctx);
  const uint32_t run = step.run() == 0 ? 1 : step.run();
  // Each stored file carries the run in its name: a re-run's files do not take the names of the
  // first run's.
  auto artifact_name = [run](absl::string_view relative) {
    return ArtifactNameFor(absl::StrCat("run", run, "/", relative));
  };
  auto how_to_get = [&ctx](absl::string_view name) {
    return absl::StrCat("kctl artifacts get ", ctx.command_id, " ", name);
  };
  std::vector<TestResult> failed;  // for their files
  // check prints no time for a failed test; result.xml has it, but only from the next test's
  // start (check rewrites the file then) or, for the last one, from the section's end. A failure
  // whose time is not there yet waits for the end of check.
  std::vector<TestResult> waiting;
  bool streaming = true;
  auto fill_times = [&](std::vector<TestResult>& batch) {
    FstestsResults xml;
    bool read = false;
    for (TestResult& r : batch) {
      // A skip's time says nothing; it would only cost a read of the file per skip.
      if (r.duration_ms >= 0 || r.status == TestStatus::kSkip) continue;
      if (!read) xml = ReadFstestsXmlResults(results);
      read = true;
      for (const TestResult& x : xml.results) {
        if (x.name == r.name) r.duration_ms = x.duration_ms;
      }
    }
  };
  auto report = [&](std::vector<TestResult> batch) {
    std::vector<TestResult> now;
    for (TestResult& r : batch) {
      r.section = section;
      if (r.status == TestStatus::kFail || r.status == TestStatus::kError) {
        r.detail = FstestsDetailWithArtifacts(r.detail, results, artifact_name, how_to_get);
      }
      now.push_back(std::move(r));
    }
    fill_times(now);
    batch.clear();
    for (TestResult& r : now) {
      bool late = streaming && r.duration_ms < 0 &&
                  (r.status == TestStatus::kFail || r.status == TestStatus::kError) &&
                  !reporter.Reported(r.name);
      (late ? waiting : batch).push_back(std::move(r));
    }
    ReportKeepingFailures(reporter, std::move(batch), &failed);
  };
  CheckOutput parser;
  PhaseOutput phase = RunParsedPhase(ctx, spec, parser, reporter, report);
  streaming = false;
  // A cancelled check leaves its file systems mounted: unmount them before the loop devices go.
  for (const char* mnt : {"SCRATCH_MNT", "TEST_DIR"}) ::umount2(config[mnt].c_str(), MNT_DETACH);

  report(std::exchange(waiting, {}));
  FstestsResults xml = ReadFstestsXmlResults(results);
  if (!xml.status.ok() && (reporter.total() > 0 || !absl::IsNotFound(xml.status))) {
    Say(ctx, absl::StrCat("fstests result.xml: ", xml.status.message()));
  }
  report(std::move(xml.results));
  std::vector<std::string> files;
  // check.log: RESULT_BASE/check.log holds every section's summary, the section's own copy the
  // same again; one is stored.
  bool have_log = false;
  for (const std::string& dir : {results, absl::StrCat(results, "/", section)}) {
    for (const char* name : {"result.xml", "check.log"}) {
      std::string path = absl::StrCat(dir, "/", name);
      if (!std::filesystem::is_regular_file(path)) continue;
      if (absl::string_view(name) == "check.log") {
        if (have_log) continue;
        have_log = true;
        absl::StatusOr<std::string> log = ReadFile(path, 16 << 20);
        if (log.ok()) report(ParseFstestsOutput(*log));
      }
      files.push_back(std::move(path));
    }
  }
  for (std::string& f : FstestsFailureFiles(results, failed)) files.push_back(std::move(f));
  for (const std::string& path : files) {
    absl::string_view rel = path;
    if (!absl::ConsumePrefix(&rel, results) || !absl::ConsumePrefix(&rel, "/")) continue;
    UploadResultFile(ctx, path, artifact_name(rel));
  }
  v1::CommandResult total;
  AddUsage(phase.result, &total);
  if (reporter.total() == 0 && phase.result.verdict() == v1::FAIL) {
    v1::CommandResult r = CheckStopped(phase.result, parser.Tail(), phase.stderr_tail);
    AddUsage(phase.result, &r);
    r.set_wall_ms(absl::ToInt64Milliseconds(absl::Now() - start));
    return r;
  }
  return StepResult(phase.result, total, reporter,
                    "fstests ran no test: check the groups, tests and expunge list",
                    phase.stderr_tail, start);
}

}  // namespace kfleet::agent

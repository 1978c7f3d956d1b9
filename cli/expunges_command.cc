#include "cli/expunges_command.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/json.h"
#include "common/expunge_file.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kKdevopsExpunges[] = "workflows/fstests/expunges";
// KERNEL/FS/unassigned/SECTION.txt: nothing deeper is an expunge list.
constexpr int kTreeDepth = 4;
constexpr size_t kMaxFiles = 10000;
// Below gRPC's default message limit of 4 MiB, with room for the fields around the contents.
constexpr size_t kMaxBatchBytes = 3 << 20;
constexpr uint32_t kMaxPassStreak = 1000;

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Collects the regular files below `dir` to `depth` levels, following symbolic links (kdevops
// links one kernel's lists to another's), as paths relative to `root`.
void Walk(const fs::path& root, const fs::path& relative, int depth,
          std::vector<std::string>& files, std::vector<std::string>& errors) {
  std::error_code ec;
  fs::directory_iterator it(root / relative, ec);
  if (ec) {
    errors.push_back(absl::StrCat((root / relative).string(), ": ", ec.message()));
    return;
  }
  for (const fs::directory_entry& entry : it) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    fs::path rel = relative / name;
    if (entry.is_directory(ec)) {
      if (depth > 1) Walk(root, rel, depth - 1, files, errors);
    } else if (entry.is_regular_file(ec)) {
      if (files.size() < kMaxFiles + 1) files.push_back(rel.string());
    }
  }
}

std::string JoinPath(const std::string& dir, const std::string& rel) {
  return (fs::path(dir) / rel).string();
}

absl::StatusOr<uint32_t> PassStreak(const Invocation& inv) {
  if (!inv.Has("pass-streak")) return 0;
  uint32_t n = 0;
  if (!absl::SimpleAtoi(inv.Get("pass-streak"), &n) || n == 0 || n > kMaxPassStreak) {
    return absl::InvalidArgumentError(
        absl::StrCat("expunges: --pass-streak: \"", inv.Get("pass-streak"),
                     "\" is not a number from 1 to ", kMaxPassStreak));
  }
  return n;
}

// Sends the files in requests below kMaxBatchBytes, keeping each (kernel, fs) pair's files in one
// request so that --replace replaces a pair's lists exactly once.
absl::StatusOr<v1::ImportExpungesResponse> Import(FleetClient& fleet,
                                                  const std::vector<v1::ExpungeFile>& files,
                                                  bool replace) {
  std::map<std::pair<std::string, std::string>, std::vector<const v1::ExpungeFile*>> pairs;
  for (const v1::ExpungeFile& f : files) pairs[{f.kernel(), f.fs()}].push_back(&f);
  v1::ImportExpungesResponse total;
  v1::ImportExpungesRequest request;
  size_t bytes = 0;
  auto flush = [&]() -> absl::Status {
    if (request.files().empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(v1::ImportExpungesResponse r, fleet.ImportExpunges(request));
    total.set_files(total.files() + r.files());
    total.set_tests(total.tests() + r.tests());
    request.clear_files();
    bytes = 0;
    return absl::OkStatus();
  };
  request.set_replace(replace);
  for (const auto& [pair, group] : pairs) {
    size_t group_bytes = 0;
    for (const v1::ExpungeFile* f : group) group_bytes += f->ByteSizeLong();
    if (bytes > 0 && bytes + group_bytes > kMaxBatchBytes) RETURN_IF_ERROR(flush());
    for (const v1::ExpungeFile* f : group) *request.add_files() = *f;
    bytes += group_bytes;
  }
  RETURN_IF_ERROR(flush());
  return total;
}

absl::StatusOr<int> RunImport(const Invocation& inv, Context& ctx) {
  if (inv.args.size() != 2) {
    return absl::InvalidArgumentError(
        "expunges import: give the directory: kctl expunges import DIR (an expunges directory "
        "or a kdevops tree)");
  }
  for (const char* flag : {"kernel", "fs", "job", "pass-streak"}) {
    if (inv.Has(flag)) {
      return absl::InvalidArgumentError(
          absl::StrCat("expunges import: --", flag, " is for export and candidates"));
    }
  }
  std::vector<std::string> skipped;
  absl::StatusOr<std::vector<v1::ExpungeFile>> files = ReadExpungeTree(inv.args[1], skipped);
  for (const std::string& s : skipped) ctx.io.err << "kctl: expunges import: skipped " << s << "\n";
  if (!files.ok()) {
    // Every error of every file, one per line, and nothing sent.
    for (absl::string_view line :
         absl::StrSplit(files.status().message(), '\n', absl::SkipEmpty())) {
      ctx.io.err << "kctl: " << line << "\n";
    }
    ctx.io.err << "kctl: expunges import: nothing imported; fix the files above and run it "
                  "again\n";
    ctx.io.err.flush();
    return kExitUsage;
  }
  if (files->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expunges import: no KERNEL/FS/unassigned/SECTION.txt files below ",
                     inv.args[1], " (nor below ", kKdevopsExpunges, " in it)"));
  }
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::ImportExpungesResponse imported, Import(*fleet, *files, inv.Has("replace")));
  if (inv.globals.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(std::string json, ToJson(imported, JsonStyle::kPretty));
    ctx.io.out << json;
    return kExitOk;
  }
  for (const v1::ExpungeFile& f : *files) {
    ctx.io.out << "imported " << ExpungePath(f.kernel(), f.fs(), f.section()) << "\n";
  }
  ctx.io.out << "imported " << imported.files() << " files, " << imported.tests() << " tests"
             << (inv.Has("replace") ? " (replacing the stored lists of their kernels and file "
                                      "systems)"
                                    : "")
             << "\n";
  return kExitOk;
}

v1::ExportExpungesRequest ExportRequest(const Invocation& inv, uint32_t pass_streak) {
  v1::ExportExpungesRequest request;
  request.set_kernel(inv.Get("kernel"));
  request.set_fs(inv.Get("fs"));
  request.set_job_id(inv.Get("job"));
  request.set_pass_streak(pass_streak);
  return request;
}

absl::StatusOr<int> RunExport(const Invocation& inv, Context& ctx) {
  if (inv.args.size() != 2) {
    return absl::InvalidArgumentError(
        "expunges export: give the directory to write to: kctl expunges export DIR");
  }
  if (inv.Has("replace")) {
    return absl::InvalidArgumentError("expunges export: --replace is for import");
  }
  const std::string& dir = inv.args[1];
  ASSIGN_OR_RETURN(uint32_t pass_streak, PassStreak(inv));
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::ExportExpungesResponse exported,
                   fleet->ExportExpunges(ExportRequest(inv, pass_streak)));
  // The controller's names become paths here: check them before writing anything.
  for (const v1::ExpungeFile& f : exported.files()) {
    absl::Status s = CheckExpungeLocation(f.kernel(), f.fs(), f.section());
    if (!s.ok()) {
      return WithExitCode(
          absl::InvalidArgumentError(absl::StrCat(
              "expunges export: the controller sent a list that cannot be a path: ", s.message())),
          kExitUnreachable);
    }
  }
  std::vector<std::string> written;
  for (const v1::ExpungeFile& f : exported.files()) {
    std::string path = JoinPath(dir, ExpungePath(f.kernel(), f.fs(), f.section()));
    absl::Status s = MakeDirs(fs::path(path).parent_path().string());
    if (s.ok()) s = WriteFileAtomic(path, f.content());
    if (!s.ok()) {
      return WithExitCode(
          absl::InvalidArgumentError(absl::StrCat("expunges export: ", s.message())), kExitUsage);
    }
    absl::StatusOr<std::vector<v1::ExpungeEntry>> entries = ParseExpungeFile(f.content(), path);
    written.push_back(entries.ok() ? absl::StrCat("wrote ", path, " (", entries->size(), " tests)")
                                   : absl::StrCat("wrote ", path));
  }
  if (inv.globals.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(std::string json, ToJson(exported, JsonStyle::kPretty));
    ctx.io.out << json;
    return kExitOk;
  }
  for (const std::string& line : written) ctx.io.out << line << "\n";
  if (exported.files().empty()) ctx.io.err << "No expunge lists to export.\n";
  for (const v1::RemovalCandidate& c : exported.candidates()) {
    ctx.io.out << DescribeCandidate(c) << "\n";
  }
  return kExitOk;
}

absl::StatusOr<int> RunCandidates(const Invocation& inv, Context& ctx) {
  if (inv.args.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("expunges candidates: unexpected argument \"",
                                                   inv.args[1], "\": filter with --kernel, --fs"));
  }
  for (const char* flag : {"job", "replace"}) {
    if (inv.Has(flag)) {
      return absl::InvalidArgumentError(
          absl::StrCat("expunges candidates: --", flag, " does not apply"));
    }
  }
  ASSIGN_OR_RETURN(uint32_t pass_streak, PassStreak(inv));
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::ExportExpungesResponse exported,
                   fleet->ExportExpunges(ExportRequest(inv, pass_streak)));
  if (inv.globals.output == OutputFormat::kJson) {
    v1::ExportExpungesResponse only;
    *only.mutable_candidates() = exported.candidates();
    ASSIGN_OR_RETURN(std::string json, ToJson(only, JsonStyle::kPretty));
    ctx.io.out << json;
    return kExitOk;
  }
  if (exported.candidates().empty()) ctx.io.err << "No candidates for removal.\n";
  for (const v1::RemovalCandidate& c : exported.candidates()) {
    ctx.io.out << DescribeCandidate(c) << "\n";
  }
  return kExitOk;
}

absl::StatusOr<int> RunExpunges(const Invocation& inv, Context& ctx) {
  const std::string& verb = inv.args[0];
  if (verb == "import") return RunImport(inv, ctx);
  if (verb == "export") return RunExport(inv, ctx);
  if (verb == "candidates") return RunCandidates(inv, ctx);
  return absl::InvalidArgumentError(absl::StrCat("expunges: unknown action \"", verb,
                                                 "\" (expected import, export or candidates)"));
}

}  // namespace

absl::StatusOr<std::vector<v1::ExpungeFile>> ReadExpungeTree(const std::string& dir,
                                                             std::vector<std::string>& skipped) {
  if (!IsDirectory(dir)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expunges import: ", dir, " is not a directory"));
  }
  std::string root = dir;
  if (IsDirectory(JoinPath(dir, kKdevopsExpunges))) root = JoinPath(dir, kKdevopsExpunges);
  std::vector<std::string> paths;
  std::vector<std::string> errors;
  Walk(root, "", kTreeDepth, paths, errors);
  if (paths.size() > kMaxFiles) {
    return absl::ResourceExhaustedError(absl::StrCat("expunges import: more than ", kMaxFiles,
                                                     " files below ", root,
                                                     ": import one kernel's directory at a time"));
  }
  std::sort(paths.begin(), paths.end());
  std::vector<v1::ExpungeFile> files;
  for (const std::string& rel : paths) {
    std::string path = JoinPath(root, rel);
    absl::StatusOr<ExpungeLocation> where = ParseExpungePath(rel);
    if (!where.ok()) {
      skipped.push_back(absl::StrCat(path, ": not KERNEL/FS/unassigned/SECTION.txt"));
      continue;
    }
    absl::StatusOr<std::string> content = ReadFile(path, kMaxExpungeFileBytes);
    if (!content.ok()) {
      errors.push_back(std::string(content.status().message()));
      continue;
    }
    absl::StatusOr<std::vector<v1::ExpungeEntry>> entries = ParseExpungeFile(*content, path);
    if (!entries.ok()) {
      errors.push_back(std::string(entries.status().message()));
      continue;
    }
    v1::ExpungeFile& f = files.emplace_back();
    f.set_kernel(where->kernel);
    f.set_fs(where->fs);
    f.set_section(where->section);
    f.set_content(*std::move(content));
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return files;
}

std::string DescribeCandidate(const v1::RemovalCandidate& c) {
  return absl::StrCat(c.test(), ": passed ", c.passes(), " runs in a row while expunged on ",
                      c.kernel(), "/", c.fs(), " section ", c.section(), ": candidate for removal");
}

CommandSpec ExpungesCommand() {
  return CommandSpec{
      .name = "expunges",
      .synopsis =
          "expunges import DIR [--replace] | expunges export DIR [--kernel K] [--fs FS] "
          "[--job JOB] [--pass-streak N] | expunges candidates [--kernel K] [--fs FS] "
          "[--pass-streak N]",
      .summary = "import and export kdevops fstests expunge lists; find tests to un-expunge",
      .description =
          "The controller keeps lists of fstests tests not to run, per kernel, file system and "
          "section, in kdevops' layout (workflows/fstests/expunges):\n\n"
          "    KERNEL/FS/unassigned/SECTION.txt      e.g. 6.1.0/xfs/unassigned/xfs_crc.txt\n\n"
          "with one test per line, optionally followed by a comment, and # comment lines:\n\n"
          "    generic/388 # bsz#3 crash\n"
          "    xfs/168 # Hung:1/6\n\n"
          "A test step applies them with fstests: {expunge_from: KERNEL/FS} (docs/tests.md).\n\n"
          "kctl expunges import DIR reads every KERNEL/FS/unassigned/SECTION.txt below DIR (an "
          "expunges directory, or a kdevops tree: then its workflows/fstests/expunges), "
          "following symbolic links. Every file is checked first: a file over 1 MiB, a line "
          "over 4 KiB or a line that is not SUITE/NAME [# comment] is reported as FILE:LINE: "
          "problem, all of them at once, and then nothing is imported (exit 2). Other files are "
          "named on stderr and skipped. The files are sent as they are, byte for byte; the "
          "controller adds them to the stored lists (a file replaces the stored list of its "
          "kernel, file system and section), or with --replace replaces every stored list of "
          "the kernels and file systems imported.\n\n"
          "kctl expunges export DIR writes the stored lists (of --kernel and --fs, else all) "
          "under DIR in the same layout, each file exactly as the controller keeps it, and "
          "prints each path it wrote. With --job JOB it writes the job's failing tests "
          "instead, for the job's kernel and each fstests section, each with its failure rate: "
          "a list to review and commit to kdevops. Existing files are replaced.\n\n"
          "Both export and kctl expunges candidates print the expunged tests whose last N "
          "stored runs all passed (--pass-streak, default 5):\n\n"
          "    generic/388: passed 5 runs in a row while expunged on 6.1/xfs section xfs_crc: "
          "candidate\n"
          "    for removal\n\n"
          "-o json prints the ImportExpungesResponse or ExportExpungesResponse message.",
      .flags =
          {
              {.name = "replace",
               .help = "import: replace the stored lists of the kernels and file systems "
                       "imported, rather than add to them."},
              {.name = "kernel",
               .value_name = "K",
               .help = "export, candidates: only this kernel's lists (its directory name, "
                       "e.g. 6.1.0)."},
              {.name = "fs",
               .value_name = "FS",
               .help = "export, candidates: only this file system's lists (xfs, ext4...)."},
              {.name = "job",
               .value_name = "JOB",
               .help = "export: the failing tests of this job instead of the stored lists."},
              {.name = "pass-streak",
               .value_name = "N",
               .help = "export, candidates: a candidate for removal passed its last N stored "
                       "runs (default 5)."},
          },
      .min_args = 1,
      .max_args = 2,
      .args_hint =
          "import DIR, export DIR or candidates, e.g. kctl expunges import "
          "~/kdevops",
      .exit_codes = {{kExitOk, "imported, exported or listed"},
                     {kExitUsage,
                      "bad arguments, a file with errors (nothing was imported), or DIR "
                      "cannot be written"},
                     {kExitUnreachable, ""},
                     {kExitNotFound, "export --job: no such job"}},
      .examples =
          "kctl expunges import ~/kdevops\n"
          "kctl expunges import ./expunges --replace\n"
          "kctl expunges export /tmp/expunges --kernel 6.1.0 --fs xfs\n"
          "# the failing tests of a job, as lists to commit to kdevops\n"
          "kctl expunges export ~/kdevops/workflows/fstests/expunges --job j-3f2a9c01d4e5b677\n"
          "kctl expunges candidates --fs xfs --pass-streak 10\n",
      .run = &RunExpunges,
  };
}

}  // namespace kfleet::cli

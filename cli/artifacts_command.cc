#include "cli/artifacts_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json.h"
#include "cli/suggest.h"
#include "cli/table.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace kfleet::cli {
namespace {

constexpr char kSha256Prefix[] = "sha256:";

// What `artifacts get` fetches and where to.
struct Wanted {
  std::string sha256;
  std::string name;  // for messages; the hex digest when only that was given
  std::string path;
};

absl::StatusOr<v1::ListArtifactsRequest> ListRequest(const std::string& id,
                                                     absl::string_view command) {
  v1::ListArtifactsRequest request;
  if (absl::StartsWith(id, "j-")) {
    request.set_job_id(id);
  } else if (absl::StartsWith(id, "c-")) {
    request.set_command_id(id);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(command, ": \"", id,
                     "\" is neither a job id (j-...) nor a command id (c-...); kctl jobs lists "
                     "jobs"));
  }
  return request;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// -O PATH, a directory to put NAME in, or ./NAME.
std::string Destination(const Invocation& inv, const std::string& name) {
  std::string path = inv.Get("output-file");
  if (path.empty()) return name;
  if (IsDirectory(path)) return absl::StrCat(path, absl::EndsWith(path, "/") ? "" : "/", name);
  return path;
}

// The blob named NAME among a job's (or command's) artifacts. Several with that name must be the
// same blob, or the user picks one by its digest.
absl::StatusOr<v1::Artifact> FindByName(const v1::ListArtifactsResponse& list,
                                        const std::string& id, const std::string& name) {
  std::vector<const v1::CommandArtifact*> found;
  std::set<std::string> digests;
  std::vector<std::string> names;
  for (const v1::CommandArtifact& a : list.artifacts()) {
    names.push_back(a.artifact().name());
    if (a.artifact().name() != name) continue;
    found.push_back(&a);
    digests.insert(a.artifact().sha256());
  }
  if (found.empty()) {
    return WithExitCode(absl::NotFoundError(absl::StrCat(
                            "artifacts get: ", id, " has no artifact named \"", name, "\"",
                            DidYouMean(name, names), "; kctl artifacts ", id, " lists them")),
                        kExitNotFound);
  }
  if (digests.size() > 1) {
    std::vector<std::string> choices;
    for (const v1::CommandArtifact* a : found) {
      choices.push_back(absl::StrCat(a->host_name(), " (", a->command_id(),
                                     "): kctl artifacts get ", kSha256Prefix,
                                     a->artifact().sha256(), " -O ", name));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("artifacts get: ", id, " has ", found.size(), " different artifacts named \"",
                     name, "\"; pick one by its digest: ", absl::StrJoin(choices, "; ")));
  }
  return found.front()->artifact();
}

// The blob whose digest starts with `prefix` (at least kMinDigestPrefix hex digits, as `kctl
// artifacts` shows 12) among a job's (or command's) artifacts. Several blobs with that prefix are
// an error naming each, with a longer prefix that picks it.
constexpr size_t kMinDigestPrefix = 6;

absl::StatusOr<v1::Artifact> FindByDigest(const v1::ListArtifactsResponse& list,
                                          const std::string& id, const std::string& prefix) {
  std::vector<const v1::CommandArtifact*> found;
  std::set<std::string> digests;
  for (const v1::CommandArtifact& a : list.artifacts()) {
    if (!absl::StartsWith(a.artifact().sha256(), prefix)) continue;
    found.push_back(&a);
    digests.insert(a.artifact().sha256());
  }
  if (found.empty()) {
    return WithExitCode(absl::NotFoundError(absl::StrCat(
                            "artifacts get: ", id, " has no artifact whose sha256 starts with ",
                            prefix, "; kctl artifacts ", id, " lists them")),
                        kExitNotFound);
  }
  if (digests.size() > 1) {
    std::vector<std::string> choices;
    for (const v1::CommandArtifact* a : found) {
      choices.push_back(absl::StrCat(a->artifact().name(), " (", a->command_id(),
                                     "): sha256:", a->artifact().sha256()));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "artifacts get: sha256:", prefix, " is ambiguous in ", id, ": ", digests.size(),
        " different artifacts start with it; give more digits: ", absl::StrJoin(choices, "; ")));
  }
  return found.front()->artifact();
}

// The hex digits of "sha256:HEX" in lower case, or an error naming the argument.
absl::StatusOr<std::string> DigestArg(const std::string& arg, size_t min_digits) {
  std::string hex = absl::AsciiStrToLower(arg.substr(std::size(kSha256Prefix) - 1));
  bool ok = hex.size() >= min_digits && hex.size() <= 64;
  for (char c : hex) ok = ok && absl::ascii_isxdigit(c);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "artifacts get: \"", arg, "\" is not sha256: and ", min_digits,
        min_digits == 64 ? "" : " to 64", " hex digits; kctl artifacts JOB -o wide shows them"));
  }
  return hex;
}

// A one-line counter on a terminal, redrawn when the percentage moves.
class ProgressLine {
 public:
  ProgressLine(Io& io, std::string name) : io_(io), name_(std::move(name)) {}

  void Update(uint64_t done, uint64_t total) {
    int percent = total == 0 ? 100 : static_cast<int>(done * 100 / total);
    if (percent == percent_) return;
    percent_ = percent;
    io_.err << "\r" << name_ << "  " << FormatBytes(done) << " of " << FormatBytes(total) << "  "
            << percent << "%\x1b[K";
    io_.err.flush();
    drawn_ = true;
  }

  void Clear() {
    if (!drawn_) return;
    io_.err << "\r\x1b[K";
    io_.err.flush();
  }

 private:
  Io& io_;
  std::string name_;
  int percent_ = -1;
  bool drawn_ = false;
};

absl::StatusOr<int> RunGet(const Invocation& inv, Context& ctx) {
  const std::vector<std::string>& args = inv.args;
  Wanted d;
  std::optional<v1::ListArtifactsRequest> list;
  std::optional<std::string> prefix;  // get JOB sha256:HEX, HEX maybe short
  if (args.size() == 2 && absl::StartsWith(args[1], kSha256Prefix)) {
    ASSIGN_OR_RETURN(d.sha256, DigestArg(args[1], kMinDigestPrefix));
    if (!IsSha256Hex(d.sha256)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "artifacts get: ", args[1],
          " is a short digest: give the job (or command) it belongs to, kctl artifacts get JOB ",
          args[1], ", or all 64 hex digits (kctl artifacts JOB -o wide shows them)"));
    }
    d.name = d.sha256;
  } else if (args.size() == 3 && absl::StartsWith(args[2], kSha256Prefix)) {
    ASSIGN_OR_RETURN(list, ListRequest(args[1], "artifacts get"));
    ASSIGN_OR_RETURN(prefix, DigestArg(args[2], kMinDigestPrefix));
  } else if (args.size() == 3) {
    ASSIGN_OR_RETURN(list, ListRequest(args[1], "artifacts get"));
    d.name = args[2];
  } else if (args.size() == 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "artifacts get: missing the artifact's NAME: kctl artifacts get ", args[1],
        " NAME (kctl artifacts ", args[1], " lists them), or kctl artifacts get sha256:HEX"));
  } else {
    return absl::InvalidArgumentError(
        "artifacts get: missing what to download: kctl artifacts get JOB NAME, e.g. kctl "
        "artifacts get j-3f2a9c01d4e5b677 vmlinuz, or kctl artifacts get sha256:HEX");
  }

  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  if (list) {
    ASSIGN_OR_RETURN(v1::ListArtifactsResponse found, fleet->ListArtifacts(*list));
    ASSIGN_OR_RETURN(v1::Artifact artifact, prefix ? FindByDigest(found, args[1], *prefix)
                                                   : FindByName(found, args[1], d.name));
    d.sha256 = artifact.sha256();
    if (prefix) d.name = artifact.name();
  }
  d.path = Destination(inv, d.name);
  size_t slash = d.path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : d.path.substr(0, slash == 0 ? 1 : slash);
  if (!IsDirectory(dir)) {
    return absl::InvalidArgumentError(
        absl::StrCat("artifacts get: cannot save to ", d.path, ": no directory ", dir));
  }
  std::string part = absl::StrCat(d.path, ".part");
  struct stat st;
  bool resuming = ::stat(part.c_str(), &st) == 0;
  if (resuming && st.st_size > 0) {
    ctx.io.err << "resuming from " << part << " (" << FormatBytes(st.st_size) << " already here)\n";
  }

  ProgressLine progress(ctx.io, d.name);
  std::function<void(uint64_t, uint64_t)> on_progress;
  if (ctx.io.err_is_tty) {
    on_progress = [&progress](uint64_t done, uint64_t total) { progress.Update(done, total); };
  }
  absl::Status s = fleet->DownloadArtifact(d.sha256, d.path, on_progress);
  progress.Clear();
  if (!s.ok()) {
    // The client makes PATH.part before it learns that there is nothing to fetch.
    if (absl::IsNotFound(s) && !resuming) ::unlink(part.c_str());
    return s;
  }
  uint64_t size = ::stat(d.path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  ctx.io.err << "saved " << d.path << " (" << FormatBytes(size) << ", sha256 "
             << d.sha256.substr(0, 12) << " verified)\n";
  return kExitOk;
}

absl::StatusOr<int> RunArtifacts(const Invocation& inv, Context& ctx) {
  if (inv.args[0] == "get") return RunGet(inv, ctx);
  if (inv.args.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "artifacts: unexpected argument \"", inv.args[1], "\": list with kctl artifacts ",
        inv.args[0], ", download with kctl artifacts get ", inv.args[0], " NAME"));
  }
  if (inv.Has("output-file")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "artifacts: -O is for downloads: kctl artifacts get ", inv.args[0], " NAME -O PATH"));
  }
  ASSIGN_OR_RETURN(v1::ListArtifactsRequest request, ListRequest(inv.args[0], "artifacts"));
  ASSIGN_OR_RETURN(FleetClient * fleet, ctx.fleet());
  ASSIGN_OR_RETURN(v1::ListArtifactsResponse list, fleet->ListArtifacts(request));
  if (inv.globals.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(std::string json, ToJson(list, JsonStyle::kPretty));
    ctx.io.out << json;
    return kExitOk;
  }
  if (list.artifacts().empty()) {
    ctx.io.err << inv.args[0] << " has no artifacts.\n";
    return kExitOk;
  }
  ctx.io.out << RenderArtifacts(list, inv.globals.output == OutputFormat::kWide);
  return kExitOk;
}

}  // namespace

std::string RenderArtifacts(const v1::ListArtifactsResponse& artifacts, bool wide) {
  Table table({"HOST", "COMMAND", "NAME", "KIND", "SIZE", "SHA256"});
  for (const v1::CommandArtifact& a : artifacts.artifacts()) {
    const v1::Artifact& f = a.artifact();
    table.AddRow({a.host_name(), a.command_id(), f.name(), f.kind(), FormatBytes(f.size()),
                  wide ? f.sha256() : f.sha256().substr(0, 12)});
  }
  return table.Render();
}

CommandSpec ArtifactsCommand() {
  return CommandSpec{
      .name = "artifacts",
      .synopsis =
          "artifacts (JOB | COMMAND) [-o table|wide|json] | artifacts get (JOB NAME | "
          "sha256:HEX) [-O PATH]",
      .summary = "list the files a job stored (kernel builds, results); get downloads one",
      .description =
          "kctl artifacts JOB lists the artifacts of a job's commands (or, for a command id "
          "c-..., of that command): kernel builds (vmlinuz, modules.tar.gz, config, System.map, "
          "kernel-release) and the files tests stored, one row each:\n\n"
          "    HOST        COMMAND              NAME      KIND     SIZE      SHA256\n"
          "    builder-1   c-9d41e0a27b3c5f18   vmlinuz   kernel   1.2 MiB   1a2b3c4d5e6f\n\n"
          "SHA256 is the first 12 hex digits of the content's digest; -o wide shows all 64. "
          "-o json prints the ListArtifactsResponse message. A job that reused a stored kernel "
          "build has no build artifacts of its own: kctl job ID -o json shows the build's "
          "(build.artifacts), and kctl artifacts get sha256:HEX fetches them.\n\n"
          "kctl artifacts get JOB NAME downloads the artifact NAME of the job to PATH (default: "
          "NAME in the current directory; a directory PATH gets NAME in it); kctl artifacts get "
          "sha256:HEX downloads a blob by its digest (default PATH: HEX); kctl artifacts get JOB "
          "sha256:HEX takes the first digits the table shows (6 or more) and saves the artifact "
          "under its NAME, or names the artifacts they fit when they fit several. An existing "
          "PATH is "
          "replaced. The bytes go to PATH.part first: a download that breaks off is resumed from "
          "there by the next kctl artifacts get with the same PATH, and the whole file is checked "
          "against its sha256 before it is renamed to PATH (a mismatch removes PATH.part). On a "
          "terminal, stderr shows the progress; at the end, kctl prints \"saved PATH (SIZE, "
          "sha256 HEX verified)\" to stderr.",
      .flags = {{.name = "output-file",
                 .short_name = 'O',
                 .value_name = "PATH",
                 .help = "With get: where to save the file (default: ./NAME)."}},
      .min_args = 1,
      .max_args = 3,
      .args_hint =
          "a job id, e.g. kctl artifacts j-3f2a9c01d4e5b677, or get JOB NAME, e.g. kctl "
          "artifacts get j-3f2a9c01d4e5b677 vmlinuz",
      .exit_codes = {{kExitOk, "listed, or downloaded and verified"},
                     {kExitUsage, "bad arguments, or PATH cannot be written"},
                     {kExitUnreachable,
                      "the controller cannot be reached, or the download failed (what arrived "
                      "is kept in PATH.part)"},
                     {kExitNotFound, "no such job or command, artifact NAME or blob"}},
      .examples =
          "kctl artifacts j-3f2a9c01d4e5b677\n"
          "kctl artifacts get j-3f2a9c01d4e5b677 vmlinuz\n"
          "kctl artifacts get j-3f2a9c01d4e5b677 config -O /tmp/config-6.1.158-kf\n"
          "kctl artifacts get sha256:1a2b3c4d5e6f...(64 hex digits) -O vmlinuz\n"
          "kctl artifacts get j-3f2a9c01d4e5b677 sha256:1a2b3c4d5e6f\n"
          "# the digests of a job's artifacts\n"
          "kctl artifacts j-3f2a9c01d4e5b677 -o json | jq -r '.artifacts[].artifact.sha256'\n",
      .run = &RunArtifacts,
  };
}

}  // namespace kfleet::cli

#include "agent/kernel/kernel_steps.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/kernel/kernel_embedded.h"
#include "common/artifact_client.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace kfleet::agent {
namespace {

namespace v1 = kfleet::v1;

// The artifacts of a build: file in the artifacts directory, and its kind.
struct ArtifactFile {
  const char* name;
  const char* kind;
  bool required;
};
constexpr ArtifactFile kBuildFiles[] = {
    {"vmlinuz", "kernel", true},         {"modules.tar.gz", "modules", false},
    {"config", "config", true},          {"System.map", "system_map", true},
    {"kernel-release", "release", true},
};

void Say(const KernelStepContext& ctx, const std::string& line) {
  if (ctx.log != nullptr) ctx.log->Write(v1::STDOUT, absl::StrCat("kfleet-agent: ", line, "\n"));
}

v1::CommandResult Failed(v1::Verdict verdict, const std::string& detail) {
  v1::CommandResult r;
  r.set_verdict(verdict);
  r.set_exit_code(-1);
  r.set_detail(detail);
  return r;
}

// The script and the guest fragment, written where the phases find them.
absl::Status WriteTools(const std::string& dir) {
  RETURN_IF_ERROR(MakeDirs(dir));
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/kfleet-kernel.sh", kKernelScript));
  if (::chmod((dir + "/kfleet-kernel.sh").c_str(), 0755) != 0) {
    return absl::InternalError(absl::StrCat("chmod ", dir, "/kfleet-kernel.sh failed"));
  }
  return WriteFileAtomic(dir + "/kfleet-guest.config", kGuestConfigFragment);
}

absl::StatusOr<std::map<std::string, std::string>> ReadResult(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 16));
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    out[kv.first] = kv.second;
  }
  return out;
}

// The script's reason for a failure (one line, or a few: a config check names each option and its
// dependencies, a failed make quotes its last lines), cut at a line end to fit in a step's detail.
std::string BoundedReason(absl::string_view why) {
  constexpr size_t kMaxReasonBytes = 8192;
  if (why.size() <= kMaxReasonBytes) return std::string(why);
  absl::string_view cut = why.substr(0, kMaxReasonBytes);
  size_t nl = cut.rfind('\n');
  if (nl != absl::string_view::npos && nl > 0) cut = cut.substr(0, nl);
  return absl::StrCat(cut, "\n...");
}

// Runs `phase` of the script. A failed phase keeps its verdict (FAIL: the kernel or its config;
// TIMEOUT, CANCELLED) with the script's one-line reason as the detail.
v1::CommandResult RunPhase(const KernelStepContext& ctx, const std::string& phase,
                           std::map<std::string, std::string> env) {
  std::string dir = ctx.work_dir + "/commands/" + ctx.command_id;
  env["KF_WORK"] = ctx.work_dir;
  env["KF_RESULT"] = dir + "/result";
  env["KF_ERROR"] = dir + "/error";
  env["KF_STATE"] = dir + "/state";
  env["KF_GUEST_FRAGMENT"] = ctx.work_dir + "/tools/kfleet-guest.config";
  RunSpec spec;
  spec.argv = {ctx.work_dir + "/tools/kfleet-kernel.sh", phase};
  spec.env = std::move(env);
  spec.dir = dir;
  v1::CommandResult r = ctx.run_phase(spec);
  if (r.verdict() != v1::PASS) {
    absl::StatusOr<std::string> why = ReadFile(dir + "/error", 64 << 10);
    if (why.ok() && !why->empty()) {
      r.set_detail(BoundedReason(absl::StripTrailingAsciiWhitespace(*why)));
    } else if (r.verdict() == v1::FAIL) {
      r.set_detail(absl::StrCat(phase, ": ", r.detail()));
    }
  }
  return r;
}

// Adds the phase's usage to the step's totals.
void Accumulate(const v1::CommandResult& phase, v1::CommandResult* total) {
  total->set_user_cpu_ms(total->user_cpu_ms() + phase.user_cpu_ms());
  total->set_system_cpu_ms(total->system_cpu_ms() + phase.system_cpu_ms());
  total->set_max_rss_bytes(std::max(total->max_rss_bytes(), phase.max_rss_bytes()));
}

absl::StatusOr<std::string> CommandDir(const KernelStepContext& ctx) {
  std::string dir = ctx.work_dir + "/commands/" + ctx.command_id;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", dir, ": ", ec.message()));
  RETURN_IF_ERROR(MakeDirs(dir));
  RETURN_IF_ERROR(WriteTools(ctx.work_dir + "/tools"));
  return dir;
}

// Uploads a file the build made and says so in the log.
absl::StatusOr<v1::Artifact> Store(const KernelStepContext& ctx, const std::string& path,
                                   const std::string& name, const std::string& kind) {
  absl::StatusOr<UploadResult> up = UploadFile(*ctx.artifacts, path, name, kind, ctx.command_id);
  if (!up.ok()) {
    return absl::Status(
        up.status().code(),
        absl::StrCat("upload of ", name, " to the artifact store: ", up.status().message()));
  }
  const v1::Artifact& a = up->artifact;
  Say(ctx, absl::StrCat("stored ", name, " (", a.size(), " bytes, sha256 ",
                        a.sha256().substr(0, 12), up->deduplicated ? ", already there" : "", ")"));
  return a;
}

// Runs the kselftest phase for `targets` and stores its archive as `name`. PASS with `archive`
// filled, or how the phase failed.
v1::CommandResult BuildKselftests(const KernelStepContext& ctx, const std::string& dir,
                                  std::map<std::string, std::string> env,
                                  const std::vector<std::string>& targets, const std::string& name,
                                  v1::CommandResult* total, v1::Artifact* archive,
                                  int64_t* build_s) {
  env["KF_KSELFTEST_TARGETS"] = absl::StrJoin(targets, " ");
  env["KF_KSELFTEST_ARCHIVE"] = name;
  v1::CommandResult r = RunPhase(ctx, "kselftest", std::move(env));
  Accumulate(r, total);
  if (r.verdict() != v1::PASS) return r;
  absl::StatusOr<std::map<std::string, std::string>> made = ReadResult(dir + "/result");
  if (!made.ok() || (*made)["kselftest"].empty()) {
    return Failed(v1::INFRA_ERROR, "kfleet-kernel kselftest left no archive");
  }
  (void)absl::SimpleAtoi((*made)["kselftest_s"], build_s);
  absl::StatusOr<v1::Artifact> a = Store(ctx, (*made)["kselftest"], name, kKselftestKind);
  if (!a.ok()) return Failed(v1::INFRA_ERROR, std::string(a.status().message()));
  *archive = *std::move(a);
  return r;
}

}  // namespace

std::string KselftestArchiveName(const std::vector<std::string>& targets) {
  std::vector<std::string> sorted = targets;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  absl::StatusOr<Sha256> h = Sha256::Create();
  // OpenSSL without SHA-256 is a broken host, not an input the agent can recover from.
  if (!h.ok()) std::abort();
  for (const std::string& t : sorted) h->Update(absl::StrCat(t, "\n"));
  absl::StatusOr<std::string> hex = h->FinishHex();
  if (!hex.ok()) std::abort();
  return absl::StrCat("kselftest-", hex->substr(0, 8), ".tar.gz");
}

absl::StatusOr<std::vector<std::string>> NormalizeKselftestTargets(
    const google::protobuf::RepeatedPtrField<std::string>& targets) {
  std::vector<std::string> out;
  for (const std::string& t : targets) {
    bool ok = !t.empty() && t.size() <= 128;
    for (absl::string_view part : absl::StrSplit(t, '/')) {
      ok = ok && !part.empty() && part != "." && part != "..";
    }
    for (char c : t) {
      ok = ok &&
           (absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '+' || c == '-' || c == '/');
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "kselftest target \"", absl::CHexEscape(t),
          "\" is not a directory name under tools/testing/selftests (e.g. size, net/mptcp)"));
    }
    out.push_back(t);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

v1::CommandResult RunKernelBuild(const v1::KernelBuildStep& step, const KernelStepContext& ctx) {
  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<std::string>> targets =
      NormalizeKselftestTargets(step.kselftest_targets());
  if (!targets.ok()) return Failed(v1::FAIL, std::string(targets.status().message()));
  const std::string archive_name = targets->empty() ? "" : KselftestArchiveName(*targets);
  absl::StatusOr<std::string> dir = CommandDir(ctx);
  if (!dir.ok()) return Failed(v1::INFRA_ERROR, std::string(dir.status().message()));
  const v1::KernelSource& src = step.source();
  std::map<std::string, std::string> env = {
      {"KF_TREE", src.tree()},
      {"KF_REF", src.ref()},
      {"KF_CONFIG", src.config()},
      {"KF_LOCALVERSION", src.localversion()},
      {"KF_JOBS", absl::StrCat(src.jobs())},
  };
  v1::CommandResult total;
  v1::CommandResult r = RunPhase(ctx, "prepare", env);
  Accumulate(r, &total);
  if (r.verdict() != v1::PASS) return r;
  absl::StatusOr<std::map<std::string, std::string>> prepared = ReadResult(*dir + "/result");
  if (!prepared.ok() || (*prepared)["identity"].size() != 64) {
    return Failed(v1::INFRA_ERROR, "kfleet-kernel prepare left no build identity");
  }
  std::string identity = (*prepared)["identity"];
  std::string short_id = identity.substr(0, 12);

  v1::KernelBuild build;
  std::string detail;
  // A build the store has already is not built again.
  {
    grpc::ClientContext rpc;
    rpc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::LookupBuildRequest req;
    req.set_identity(identity);
    grpc::Status s = ctx.artifacts->LookupBuild(&rpc, req, &build);
    if (s.ok()) {
      Say(ctx, absl::StrCat("kernel build ", short_id, " (", build.release(),
                            ") is in the artifact store already: make not run"));
      build.set_reused(true);
      build.set_build_ms(0);
      detail = absl::StrCat("kernel ", build.release(), " reused (build ", short_id, ")");
    } else if (s.error_code() != grpc::StatusCode::NOT_FOUND) {
      return Failed(v1::INFRA_ERROR, absl::StrCat("asking the controller for build ", short_id,
                                                  ": ", s.error_message()));
    } else {
      build.Clear();
    }
  }

  if (!build.reused()) {
    r = RunPhase(ctx, "make", env);
    Accumulate(r, &total);
    if (r.verdict() != v1::PASS) return r;
    absl::StatusOr<std::map<std::string, std::string>> made = ReadResult(*dir + "/result");
    if (!made.ok() || (*made)["artifacts"].empty()) {
      return Failed(v1::INFRA_ERROR, "kfleet-kernel make left no artifacts");
    }
    int64_t build_s = 0;
    (void)absl::SimpleAtoi((*made)["build_s"], &build_s);
    build.set_identity(identity);
    build.set_release((*made)["release"]);
    build.set_source((*made)["source"]);
    build.set_builder(ctx.host_name);
    build.set_build_ms(build_s * 1000);
    for (const ArtifactFile& f : kBuildFiles) {
      std::string path = absl::StrCat((*made)["artifacts"], "/", f.name);
      if (::access(path.c_str(), R_OK) != 0) {
        if (f.required) return Failed(v1::INFRA_ERROR, absl::StrCat("the build made no ", f.name));
        continue;
      }
      absl::StatusOr<v1::Artifact> a = Store(ctx, path, f.name, f.kind);
      if (!a.ok()) return Failed(v1::INFRA_ERROR, std::string(a.status().message()));
      *build.add_artifacts() = *std::move(a);
    }
    detail = absl::StrCat("built kernel ", build.release(), " in ", build_s, " s (build ", short_id,
                          ")");
  }

  // The kernel's artifacts, and of the stored kselftest archives only the one of these targets.
  std::optional<v1::Artifact> archive;
  {
    google::protobuf::RepeatedPtrField<v1::Artifact> all = std::move(*build.mutable_artifacts());
    build.clear_artifacts();
    for (v1::Artifact& a : all) {
      if (a.kind() != kKselftestKind) {
        *build.add_artifacts() = std::move(a);
      } else if (!archive_name.empty() && a.name() == archive_name) {
        archive = std::move(a);
      }
    }
  }
  if (!targets->empty()) {
    std::string names = absl::StrJoin(*targets, " ");
    if (archive.has_value()) {
      Say(ctx, absl::StrCat("kselftests ", names, " are in the artifact store already (",
                            archive_name, "): not built"));
      absl::StrAppend(&detail, "; kselftests ", names, " reused");
    } else {
      archive.emplace();
      int64_t kselftest_s = 0;
      r = BuildKselftests(ctx, *dir, env, *targets, archive_name, &total, &*archive, &kselftest_s);
      if (r.verdict() != v1::PASS) return r;
      absl::StrAppend(&detail, "; kselftests ", names, " built in ", kselftest_s, " s");
    }
    *build.add_artifacts() = *std::move(archive);
  }
  total.set_verdict(v1::PASS);
  total.set_exit_code(0);
  total.set_wall_ms(absl::ToInt64Milliseconds(absl::Now() - start));
  total.set_detail(detail);
  *total.mutable_kernel() = std::move(build);
  return total;
}

v1::CommandResult RunKernelInstall(const v1::KernelInstallStep& step,
                                   const KernelStepContext& ctx) {
  absl::Time start = absl::Now();
  const v1::KernelBuild& build = step.build();
  if (build.identity().empty() || build.artifacts().empty()) {
    return Failed(v1::INFRA_ERROR, "kernel_install came without a build to install");
  }
  absl::StatusOr<std::string> dir = CommandDir(ctx);
  if (!dir.ok()) return Failed(v1::INFRA_ERROR, std::string(dir.status().message()));
  std::string files = *dir + "/artifacts";
  if (absl::Status s = MakeDirs(files); !s.ok()) {
    return Failed(v1::INFRA_ERROR, std::string(s.message()));
  }
  for (const v1::Artifact& a : build.artifacts()) {
    if (a.kind() == kKselftestKind) continue;  // for the test steps, which fetch it themselves
    std::string dest = absl::StrCat(files, "/", a.name());
    TransferOptions transfer;
    transfer.command_id = ctx.command_id;
    if (absl::Status s = DownloadFile(*ctx.artifacts, a.sha256(), dest, transfer); !s.ok()) {
      return Failed(v1::INFRA_ERROR,
                    absl::StrCat("download of ", a.name(), " (", a.sha256().substr(0, 12),
                                 ") from the artifact store: ", s.message()));
    }
    Say(ctx, absl::StrCat("downloaded ", a.name(), " (", a.size(), " bytes, sha256 verified)"));
  }
  v1::CommandResult r =
      RunPhase(ctx, "install", {{"KF_DIR", files}, {"KF_RELEASE", build.release()}});
  if (r.verdict() != v1::PASS) return r;
  absl::StatusOr<std::map<std::string, std::string>> out = ReadResult(*dir + "/result");
  r.set_wall_ms(absl::ToInt64Milliseconds(absl::Now() - start));
  r.set_detail(absl::StrCat("installed kernel ", build.release(), "; boots once from grub entry ",
                            out.ok() ? (*out)["entry"] : "?"));
  return r;
}

}  // namespace kfleet::agent

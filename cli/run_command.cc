#include "cli/run_command.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/args.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/job_follow.h"
#include "cli/job_spec.h"
#include "cli/kernel_paths.h"
#include "common/files.h"

namespace kfleet::cli {
namespace {

absl::StatusOr<int> RunRun(const Invocation& inv, Context& ctx) {
  std::string path = inv.Get("file");
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "run: missing the job spec: write kctl run -f job.yaml; see kctl run --help");
  }
  absl::StatusOr<std::string> text = ReadFile(path, kMaxJobSpecBytes);
  if (!text.ok()) {
    return WithExitCode(
        absl::InvalidArgumentError(absl::StrCat("run: -f: ", text.status().message())), kExitUsage);
  }
  absl::StatusOr<v1::JobSpec> spec = LoadJobSpec(*text, path, CurrentDirectory());
  if (!spec.ok()) {
    // One "kctl: FILE:LINE:COL: ..." line per error, nothing submitted.
    for (absl::string_view line :
         absl::StrSplit(spec.status().message(), '\n', absl::SkipEmpty())) {
      ctx.io.err << "kctl: " << line << "\n";
    }
    ctx.io.err.flush();
    return kExitUsage;
  }
  return SubmitAndFollow(*spec, inv.globals.output, ctx);
}

}  // namespace

absl::StatusOr<v1::JobSpec> LoadJobSpec(absl::string_view yaml_text, absl::string_view file_name,
                                        const std::string& cwd) {
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpec(yaml_text, file_name);
  if (!spec.ok()) return spec.status();
  if (spec->has_kernel()) MakeKernelPathsAbsolute(*spec->mutable_kernel(), cwd);
  return spec;
}

CommandSpec RunCommand() {
  return CommandSpec{
      .name = "run",
      .synopsis = "run -f FILE [-o table|wide|json]",
      .summary = "submit a job from a job spec file, follow it, exit with its verdict",
      .description =
          "Reads the job spec FILE (YAML whose fields are those of the JobSpec message in "
          "proto/kfleet/v1/fleet.proto; see DESIGN.md, \"Job spec\"), submits the job and "
          "follows it to its end:\n\n"
          "    name: boot-and-check\n"
          "    hosts: {labels: {pool: local}, count: 1}\n"
          "    kernel: {tree: ../linux, config: defconfig+my.config, localversion: -kf}\n"
          "    steps:\n"
          "      - kernel_build: {}\n"
          "      - kernel_install: {}\n"
          "      - reboot: {timeout: 5m}\n"
          "      - exec: [uname, -r]\n\n"
          "A file with errors is not submitted: kctl prints every error, one per line as "
          "FILE:LINE:COLUMN: FIELD: problem, and exits 2.\n\n"
          "Local paths are made absolute before the job is submitted, because the builder (the "
          "controller's own machine in the default setup) does not run in your directory: "
          "kernel.tree when it names a directory here, and each part of kernel.config (BASE and "
          "FRAGMENTs, split on '+') that names a file here. Make targets (defconfig, "
          "tinyconfig), fragments of the tree (kvm_guest.config), absolute paths and git URLs "
          "are sent as written.\n\n"
          "The job id is printed to stderr (\"job ID submitted\"). Then, on a terminal, a table "
          "with one row per command (HOST STEP STATE ELAPSED DETAIL) is redrawn in place as the "
          "job goes; elsewhere, one line per change:\n\n"
          "      12.3s  builder-1  kernel_build  RUNNING\n"
          "      97.0s  builder-1  kernel_build  PASS  built kernel 6.1.158-kf in 85 s (build "
          "1a2b3c4d5e6f)\n\n"
          "STATE is WAITING (for a host), PENDING, RUNNING, SKIPPED (an earlier step failed) "
          "or the command's verdict. When the job has ended, kctl prints one line per command, "
          "then, when the job has a kernel build, \"kernel RELEASE, build ID (built in N s|reused) "
          "on BUILDER\", the build time, each reboot's boot time (from reboot to the agent's "
          "registration), the total time and the verdict (\"PASS\", or e.g. \"BOOT_FAILED: "
          "why\"), and exits with the verdict (see EXIT STATUS).\n\n"
          "Interrupting kctl does not stop the job (kctl cancel ID does; kctl job ID --watch "
          "follows it again). If the controller goes away meanwhile, kctl waits up to 2 "
          "minutes for it to come back.\n\n"
          "With -o json, nothing is shown while the job runs; the final Job message is printed "
          "as one JSON document. With -o wide, the table adds each command's id.",
      .flags =
          {
              {.name = "file",
               .short_name = 'f',
               .value_name = "FILE",
               .help = "The job spec file (YAML)."},
              // DESIGN.md's contract writes `run -f JOB.yaml [--follow]`; following is what run
              // always does.
              {.name = "follow", .hidden = true},
          },
      .exit_codes = {{kExitOk, "the job passed"},
                     {kExitFail, "a command, kernel or test failed (FAIL)"},
                     {kExitUsage,
                      "FILE cannot be read or has errors (nothing was submitted), "
                      "or the controller refused the job"},
                     {kExitUnreachable, ""},
                     {kExitBootFailed, "a kernel did not boot (BOOT_FAILED)"},
                     {kExitTimeout, "a step ran past its timeout (TIMEOUT)"},
                     {kExitInfraError, ""},
                     {kExitCancelled, "the job was cancelled (kctl cancel)"},
                     {kExitNotFound, "a host named in the spec is not known"},
                     {kExitNothingRan,
                      "a test step's tests were all skipped (NOTHING_RAN; not with skips_ok)"}},
      .examples =
          "kctl run -f boot.yaml\n"
          "# the final job as JSON, for scripts\n"
          "kctl run -f boot.yaml -o json > job.json; echo \"exit $?\"\n"
          "# the report only, e.g. in CI logs\n"
          "kctl run -f smoke.yaml | tail -n 8\n",
      .run = &RunRun,
  };
}

}  // namespace kfleet::cli

// The job spec file of `kctl run -f job.yaml`: YAML whose fields map one to one onto
// kfleet.v1.JobSpec (DESIGN.md, "Job spec"), so the proto is the schema.
//
//   name: xfs-smoke
//   hosts: {labels: {pool: local}, count: 2}   # or {names: [h1, h2]} or {all: true}
//   kernel: {tree: /src/linux, ref: v6.1}
//   steps:
//     - kernel_build: {}
//     - kernel_install: {}
//     - reboot: {timeout: 5m}                 # or: - {reboot: {}, timeout: 5m}
//     - exec: "uname -r"                      # /bin/sh -c "uname -r"
//     - exec: [uname, -r]                     # argv
//     - exec: {argv: [make, check], env: {V: "1"}, dir: /src/t}
#ifndef KFLEET_CLI_JOB_SPEC_H_
#define KFLEET_CLI_JOB_SPEC_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

// Inputs larger than this are refused before YAML parsing.
inline constexpr size_t kMaxJobSpecBytes = size_t{1} << 20;
// Collections nested deeper than this are refused (a job spec needs about 7).
inline constexpr int kMaxJobSpecDepth = 32;

// Parses and checks a job spec. `file_name` only names the input in errors.
//
// On any error returns INVALID_ARGUMENT and no spec. The message has every error found, one per
// line, sorted by position, each as
//   FILE:LINE:COL: FIELD_PATH: problem (expected ...)
// e.g. `job.yaml:12:5: steps[2].reboot.timeout: "5 minutes" is not a duration (expected a number
// and a unit: 30s, 5m, 2h)`. FIELD_PATH is left out for errors about the whole document. Errors
// that follow from an earlier one (a step with an unknown kind is not also "missing a kind") are
// not reported. After 50 errors the rest are counted on a last line.
//
// Mapping rules: map keys are proto field names; scalars must fit the field type; repeated fields
// take sequences, map fields maps of scalars; message fields take maps (or nothing: `reboot:` is an
// empty RebootStep). Steps are one-key maps naming the kind, see the file comment.
//
// Checks after the mapping: hosts is exactly one of all, names, labels (count only with labels);
// there is at least one step; timeouts are durations; kernel_build is only the first step and needs
// the job's kernel (with a tree), kernel_install needs a kernel_build before it, and a kernel needs
// a kernel_build step; exec has a command; fields the controller fills in (kernel_build.source,
// kernel_install.build, via_provider) are refused; the name is 1-128 printable characters.
absl::StatusOr<v1::JobSpec> ParseJobSpec(absl::string_view yaml_text, absl::string_view file_name);

// The spec in the format ParseJobSpec reads: every field that is set, in proto field order, map
// entries sorted by key, each step's timeout inside its kind's map. For every spec ParseJobSpec
// returns, ParseJobSpec(JobSpecToYaml(spec)) returns the same spec, unless the output is over
// kMaxJobSpecBytes (possible only when YAML aliases expanded a smaller input).
std::string JobSpecToYaml(const v1::JobSpec& spec);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_JOB_SPEC_H_

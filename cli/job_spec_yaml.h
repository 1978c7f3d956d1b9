// What the job spec reader (ParseJobSpec: job_spec.cc, job_spec_checks.cc) and writer
// (JobSpecToYaml: job_spec_yaml.cc) must agree on beyond the proto itself. Both functions are
// declared in job_spec.h; this header is internal to kfleet_cli.
#ifndef KFLEET_CLI_JOB_SPEC_YAML_H_
#define KFLEET_CLI_JOB_SPEC_YAML_H_

namespace kfleet::cli::internal {

// The oneof of v1::Step that holds the step's kind: a step is written as a map whose one key
// names the kind (`- exec: [uname, -r]`).
inline constexpr char kStepKindOneof[] = "kind";

// The key of Step.timeout. The reader takes it beside the step's kind (`- {reboot: {}, timeout:
// 5m}`) or inside the kind's map (`- reboot: {timeout: 5m}`, as DESIGN.md writes it) unless the
// kind has a field of that name; the writer puts it inside.
inline constexpr char kStepTimeout[] = "timeout";

// The key of Step.memory_max: beside the step's kind only (`- exec: [x]` then `memory_max: 64M`
// on the next line of the item).
inline constexpr char kStepMemoryMax[] = "memory_max";

}  // namespace kfleet::cli::internal

#endif  // KFLEET_CLI_JOB_SPEC_YAML_H_

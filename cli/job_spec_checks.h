// The checks of a job spec that its proto cannot express, made after the YAML is mapped onto it
// (job_spec.cc): hosts, step order, durations, memory sizes, names, controller-filled fields.
// ParseJobSpec in job_spec.h lists them. Internal to kfleet_cli.
#ifndef KFLEET_CLI_JOB_SPEC_CHECKS_H_
#define KFLEET_CLI_JOB_SPEC_CHECKS_H_

#include "cli/yaml_errors.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli::internal {

// Checks `spec` across its fields and reports each problem to `errors`, at the position recorded
// for the field while mapping. Stays quiet about paths already marked bad, and about what depends
// on them.
void CheckJobSpec(const v1::JobSpec& spec, YamlErrors* errors);

}  // namespace kfleet::cli::internal

#endif  // KFLEET_CLI_JOB_SPEC_CHECKS_H_

// `kctl artifacts JOB` lists the files a job's commands stored (kernel builds, test results);
// `kctl artifacts get JOB NAME` (or sha256:HEX) downloads one.
#ifndef KFLEET_CLI_ARTIFACTS_COMMAND_H_
#define KFLEET_CLI_ARTIFACTS_COMMAND_H_

#include <string>

#include "cli/command_spec.h"
#include "kfleet/v1/artifacts.pb.h"

namespace kfleet::cli {

CommandSpec ArtifactsCommand();

// HOST COMMAND NAME KIND SIZE SHA256 (its first 12 digits; all 64 with `wide`).
std::string RenderArtifacts(const v1::ListArtifactsResponse& artifacts, bool wide);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_ARTIFACTS_COMMAND_H_

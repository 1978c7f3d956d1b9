// `kctl expunges import|export|candidates`: kdevops fstests expunge lists
// (KERNEL/FS/unassigned/SECTION.txt) to and from the controller.
#ifndef KFLEET_CLI_EXPUNGES_COMMAND_H_
#define KFLEET_CLI_EXPUNGES_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/command_spec.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

CommandSpec ExpungesCommand();

// The expunge files below `dir` (an expunges directory, or a kdevops tree holding
// workflows/fstests/expunges), each checked with ParseExpungeFile, in path order. Files and
// directories whose names start with '.' are left out; other files that are not
// KERNEL/FS/unassigned/SECTION.txt are named in `skipped`. Every error of every file is in the
// InvalidArgument message, one per line.
absl::StatusOr<std::vector<v1::ExpungeFile>> ReadExpungeTree(const std::string& dir,
                                                             std::vector<std::string>& skipped);

// "generic/388: passed 5 runs in a row while expunged on 6.1/xfs section xfs_crc: candidate for
// removal"
std::string DescribeCandidate(const v1::RemovalCandidate& candidate);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_EXPUNGES_COMMAND_H_

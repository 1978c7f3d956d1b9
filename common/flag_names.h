// The command-line contract spells flags with dashes (--state-dir); absl flags are declared with
// underscores. This turns "--state-dir=x" into "--state_dir=x" before absl::ParseCommandLine.
#ifndef KFLEET_COMMON_FLAG_NAMES_H_
#define KFLEET_COMMON_FLAG_NAMES_H_

#include <string>
#include <vector>

namespace kfleet {

// Returns argv with dashes inside flag names replaced by underscores. Values, positional
// arguments and everything after "--" are left alone.
std::vector<std::string> DashFlagsToUnderscores(int argc, char** argv);

}  // namespace kfleet

#endif  // KFLEET_COMMON_FLAG_NAMES_H_

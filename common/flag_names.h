// The command-line contract spells flags with dashes (--state-dir); absl flags are declared with
// underscores. This turns "--state-dir=x" into "--state_dir=x" before absl::ParseCommandLine.
#ifndef KFLEET_COMMON_FLAG_NAMES_H_
#define KFLEET_COMMON_FLAG_NAMES_H_

#include <signal.h>

#include <string>
#include <vector>

namespace kfleet {

// Returns argv with dashes inside flag names replaced by underscores. Values, positional
// arguments and everything after "--" are left alone.
std::vector<std::string> DashFlagsToUnderscores(int argc, char** argv);

// Everything a daemon's main() does before reading its flags: absl::ParseCommandLine over
// DashFlagsToUnderscores, SIGINT and SIGTERM blocked in every thread (to be taken with sigwait),
// SIGPIPE ignored. Returns the blocked set.
sigset_t ParseFlagsAndBlockSignals(int argc, char** argv);

}  // namespace kfleet

#endif  // KFLEET_COMMON_FLAG_NAMES_H_

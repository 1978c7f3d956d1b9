// The command-line contract spells flags with dashes (--state-dir); absl flags are declared with
// underscores. This turns "--state-dir=x" into "--state_dir=x" before absl::ParseCommandLine.
#ifndef KFLEET_COMMON_FLAG_NAMES_H_
#define KFLEET_COMMON_FLAG_NAMES_H_

#include <signal.h>

#include <string>
#include <vector>

namespace kfleet {

struct DaemonSpec;

// Returns argv with dashes inside flag names replaced by underscores. Values, positional
// arguments and everything after "--" are left alone.
std::vector<std::string> DashFlagsToUnderscores(int argc, char** argv);

// Everything a daemon's main() does before reading its flags: absl::ParseCommandLine over
// DashFlagsToUnderscores, SIGINT and SIGTERM blocked in every thread (to be taken with sigwait),
// SIGPIPE ignored. Returns the blocked set.
sigset_t ParseFlagsAndBlockSignals(int argc, char** argv);

// The same for a daemon described by `spec` (common/daemon_flags.h): --help, -h, --helpfull,
// --version, --man and --print-config print to stdout and exit 0; otherwise the config file, then
// the command line are read (ParseDaemonArgs in common/daemon_config.h) before
// absl::ParseCommandLine, and an error is printed as "NAME: ..." on stderr with exit status 2. A
// spec whose groups miss one of the daemon's flags is a bug: it aborts.
sigset_t ParseFlagsAndBlockSignals(const DaemonSpec& spec, int argc, char** argv);

}  // namespace kfleet

#endif  // KFLEET_COMMON_FLAG_NAMES_H_

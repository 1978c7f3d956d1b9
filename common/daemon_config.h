// How a daemon reads its flags: the help options first, then the YAML config file named by its
// config flag, then the command line, which overrides the file. Every value goes through the
// flag's own absl parser (CommandLineFlag::ParseFrom), so a key of the file and a flag of the
// command line accept the same values. Flags must be registered (linked in) when these run; they
// set process-wide flag values and are meant for main(), before any other thread starts.
#ifndef KFLEET_COMMON_DAEMON_CONFIG_H_
#define KFLEET_COMMON_DAEMON_CONFIG_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/daemon_flags.h"

namespace kfleet {

// Config files are read whole; a larger one is refused.
inline constexpr size_t kMaxConfigFileBytes = 1 << 20;

// What a daemon's command line asks for.
enum class DaemonAction { kRun, kHelp, kVersion, kMan, kPrintConfig };

// Reads `args` (argv, program name first). A help option before any "--" (--help, -help, -h,
// --helpfull, --helpshort, --version, --man, --print-config; the first one counts) is returned
// without reading anything else. Otherwise the config file named by the last --CONFIG_FLAG is
// applied (ApplyConfigFile), then every flag of the command line, and kRun is returned. Only the
// spec's flags are accepted, and no positional arguments. Errors (InvalidArgument, or NotFound
// and ResourceExhausted for the file) name the flag, or the file, line and key, and the fix.
absl::StatusOr<DaemonAction> ParseDaemonArgs(const DaemonSpec& spec,
                                             const std::vector<std::string>& args);

// Sets the flags a YAML config file names: top-level keys are flag names with dashes, values
// scalars (or, for lists, sequences of scalars). Keys in `spec.reserved_keys` are skipped; the
// config flag itself and keys that are not flags of the spec are refused. `file_name` is only
// used in messages, as "FILE:LINE: ...". Stops at the first error; flags set before it keep
// their new values.
absl::Status ApplyConfigText(const DaemonSpec& spec, absl::string_view text,
                             absl::string_view file_name);

// ApplyConfigText over the contents of `path`, refused above kMaxConfigFileBytes.
absl::Status ApplyConfigFile(const DaemonSpec& spec, const std::string& path);

// The name in `names` closest to `word` if it is a likely typo (at most 2 edits, fewer than half
// the word's length; underscores count as dashes) or `word` is a prefix of exactly one name;
// otherwise "".
std::string ClosestName(absl::string_view word, const std::vector<std::string>& names);

// The dashed names of every flag registered in this process outside absl itself: in a daemon,
// the keys its config file may hold besides the reserved ones (those the flag loader has
// checked before the daemon's own parts read the same file).
std::set<std::string> RegisteredFlagKeys();

}  // namespace kfleet

#endif  // KFLEET_COMMON_DAEMON_CONFIG_H_

// `kctl user create NAME --role ROLE`: a key made here, a certificate from the controller, and a
// directory with what the new user needs; `kctl user revoke NAME`.
#ifndef KFLEET_CLI_USER_COMMAND_H_
#define KFLEET_CLI_USER_COMMAND_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cli/command_spec.h"

namespace kfleet::cli {

CommandSpec UserCommand();

// A user name is 1 to 64 letters, digits, '.', '_' and '-', starting with a letter or digit: it
// is the certificate's CN and a file name. `command` prefixes the error ("user create").
absl::Status CheckUserName(absl::string_view name, absl::string_view command);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_USER_COMMAND_H_

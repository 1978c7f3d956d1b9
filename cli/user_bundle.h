// The directory `kctl user create` hands to a new user: ca.crt, NAME.crt, NAME.key and a kctl.yaml
// naming them, all mode 0600. No file is ever written over an existing one.
#ifndef KFLEET_CLI_USER_BUNDLE_H_
#define KFLEET_CLI_USER_BUNDLE_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kfleet::cli {

struct UserBundle {
  std::string name;
  std::string role;
  std::string controller;   // HOST:PORT, for kctl.yaml
  std::string server_name;  // for kctl.yaml; "" leaves it out
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// Where the files of a bundle go.
struct BundleFiles {
  std::string dir;
  std::string ca;      // DIR/ca.crt
  std::string cert;    // DIR/NAME.crt
  std::string key;     // DIR/NAME.key
  std::string config;  // DIR/kctl.yaml
};

// Precondition: `name` is a valid user name (no '/').
BundleFiles BundleFilesFor(absl::string_view dir, absl::string_view name);

// AlreadyExists naming the first of the files that exists already, and how to go on.
absl::Status CheckBundleFilesFree(const BundleFiles& files);

// kctl.yaml for the bundle: the controller, and ca/cert/key relative to the file's directory.
std::string BundleConfigText(const UserBundle& bundle);

// Creates files.dir (mode 0700) when it does not exist, then writes the four files with
// WriteNewFile. On an error, removes the files it wrote.
absl::Status WriteBundle(const UserBundle& bundle, const BundleFiles& files);

// Writes `data` to `path`, which must not exist, with `mode`: into a temporary file of the same
// directory, synced, then renamed into place only if `path` still does not exist (AlreadyExists
// otherwise). A crash leaves no partial `path`.
absl::Status WriteNewFile(const std::string& path, absl::string_view data, mode_t mode);

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_USER_BUNDLE_H_

// For tests: runs kctl in-process against a FakeFleetService and a FakeAccessService, with captured
// output, a fixed clock that only kctl's sleeps advance, and UTC; and a fixture with a runner and a
// temporary directory.
#ifndef KFLEET_CLI_KCTL_TEST_RUNNER_H_
#define KFLEET_CLI_KCTL_TEST_RUNNER_H_

#include <stdlib.h>

#include <cstdlib>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/config.h"
#include "cli/context.h"
#include "cli/fake_access_service.h"
#include "cli/fake_fleet_service.h"
#include "cli/kctl.h"
#include "gtest/gtest.h"

namespace kfleet::cli {

class KctlTestRunner {
 public:
  static absl::Time Start() { return absl::FromUnixSeconds(1714564984); }  // 2024-05-01 12:03:04

  // Runs `kctl --insecure --controller FAKE ARGS...` and returns its exit code; out() and err()
  // hold what it printed.
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    Io io{.out = out_,
          .err = err_,
          .out_is_tty = tty,
          .now = [this] { return now; },
          .sleep =
              [this](absl::Duration d) {
                now += d;
                if (on_sleep) on_sleep();
              },
          .tz = absl::UTCTimeZone(),
          .columns = [this] { return columns; }};
    args.insert(args.begin(), {"--insecure", "--controller", server_.address()});
    EnvLookup no_env = [](absl::string_view) { return std::nullopt; };
    return RunKctl(args, io, no_env, absl::Seconds(5));
  }

  std::string out() const { return out_.str(); }
  std::string err() const { return err_.str(); }
  // The fake controller's "127.0.0.1:PORT", as kctl is pointed at it.
  std::string address() const { return server_.address(); }

  FakeFleetService service;
  FakeAccessService access;
  absl::Time now = Start();        // advanced by kctl's sleeps
  bool tty = false;                // Io::out_is_tty
  size_t columns = 0;              // Io::columns
  std::function<void()> on_sleep;  // called after each sleep, with `now` advanced

 private:
  FakeFleetServer server_{service, &access};
  std::ostringstream out_;
  std::ostringstream err_;
};

// A fixture for tests of kctl's commands: kctl_ to run them, and dir_, a new temporary directory
// removed after the test.
class KctlCommandTest : public ::testing::Test {
 protected:
  KctlCommandTest() {
    std::string pattern = ::testing::TempDir() + "kctl_XXXXXX";
    dir_ = mkdtemp(pattern.data());
  }
  ~KctlCommandTest() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  KctlTestRunner kctl_;
  std::string dir_;
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_KCTL_TEST_RUNNER_H_

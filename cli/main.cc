// kctl: the command line for kfleet. All of it lives in kfleet_cli; this only wires the process in.
#include <grpc/support/log.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cli/config.h"
#include "cli/context.h"
#include "cli/kctl.h"
#include "cli/live_screen.h"

int main(int argc, char** argv) {
  // gRPC logs failed TLS handshakes on its own; kctl reports them in its words. GRPC_VERBOSITY
  // brings gRPC's log back, for debugging.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
  std::vector<std::string> args(argv + 1, argv + argc);
  kfleet::cli::Io io{.out = std::cout,
                     .err = std::cerr,
                     .out_is_tty = isatty(STDOUT_FILENO) == 1,
                     .err_is_tty = isatty(STDERR_FILENO) == 1,
                     .columns = &kfleet::cli::TerminalColumns};
  int code = kfleet::cli::RunKctl(args, io, kfleet::cli::ProcessEnv());
  std::cout.flush();
  return code;
}

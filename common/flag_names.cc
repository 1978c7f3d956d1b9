#include "common/flag_names.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/flags/parse.h"
#include "common/daemon_config.h"
#include "common/daemon_flags.h"

namespace kfleet {

std::vector<std::string> DashFlagsToUnderscores(int argc, char** argv) {
  std::vector<std::string> out;
  bool rest_positional = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i > 0 && !rest_positional) {
      if (arg == "--") {
        rest_positional = true;
      } else if (arg.size() > 2 && arg[0] == '-') {
        size_t start = arg[1] == '-' ? 2 : 1;
        size_t end = arg.find('=');
        if (end == std::string::npos) end = arg.size();
        for (size_t j = start; j < end; ++j) {
          if (arg[j] == '-') arg[j] = '_';
        }
      }
    }
    out.push_back(std::move(arg));
  }
  return out;
}

namespace {

// Prints what a help option asks for; returns false for kRun.
bool Answer(const DaemonSpec& spec, DaemonAction action) {
  switch (action) {
    case DaemonAction::kHelp:
      std::cout << RenderHelp(spec);
      return true;
    case DaemonAction::kVersion:
      std::cout << spec.name << " " << spec.version << "\n";
      return true;
    case DaemonAction::kMan:
      std::cout << RenderManPage(spec);
      return true;
    case DaemonAction::kPrintConfig:
      std::cout << RenderConfigExample(spec);
      return true;
    case DaemonAction::kRun:
      return false;
  }
  return false;
}

}  // namespace

sigset_t ParseFlagsAndBlockSignals(const DaemonSpec& spec, int argc, char** argv) {
  if (absl::Status valid = ValidateSpec(spec); !valid.ok()) {
    std::fprintf(stderr, "%s: %s\n", spec.name.c_str(), std::string(valid.message()).c_str());
    std::abort();
  }
  absl::StatusOr<DaemonAction> action =
      ParseDaemonArgs(spec, std::vector<std::string>(argv, argv + argc));
  if (!action.ok()) {
    std::fprintf(stderr, "%s: %s\n", spec.name.c_str(),
                 std::string(action.status().message()).c_str());
    std::exit(2);
  }
  if (Answer(spec, *action)) {
    std::cout.flush();
    std::exit(std::cout.good() ? 0 : 1);
  }
  // Every flag is set and checked by now; absl still sees the command line as its own.
  return ParseFlagsAndBlockSignals(argc, argv);
}

sigset_t ParseFlagsAndBlockSignals(int argc, char** argv) {
  std::vector<std::string> args = DashFlagsToUnderscores(argc, argv);
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

}  // namespace kfleet

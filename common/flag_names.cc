#include "common/flag_names.h"

#include "absl/flags/parse.h"

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

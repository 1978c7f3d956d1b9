// Prints the LogData of `kctl exec` and `kctl logs`: raw bytes of one command, lines prefixed by
// host for a job, or one JSON document per message.
#ifndef KFLEET_CLI_LOG_PRINTER_H_
#define KFLEET_CLI_LOG_PRINTER_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cli/context.h"
#include "cli/line_prefixer.h"
#include "kfleet/v1/fleet.pb.h"

namespace kfleet::cli {

class LogPrinter {
 public:
  enum class Mode {
    kRaw,       // bytes exactly as stored
    kPrefixed,  // "host | line"
    kJson,      // one LogData per line
  };

  // With `stderr_to_err`, the command's stderr stream goes to kctl's stderr; every other stream,
  // and all of them without it, go to stdout. `io` must outlive this.
  LogPrinter(Io& io, Mode mode, bool stderr_to_err);

  // Pads prefixes to at least this host name (kPrefixed).
  void AddHost(absl::string_view host) { prefixer_.AddHost(host); }

  // Prints one message; the `end` message prints nothing except in kJson.
  absl::Status Print(const v1::LogData& data);

  // Says that the logs are being sent again from their beginning (a new TailLogs after a
  // reconnect): bytes already printed are dropped, so each byte is printed once.
  void Restart();

  // Prints what is left of partial lines.
  void Finish();

 private:
  Io& io_;
  Mode mode_;
  bool stderr_to_err_;
  LinePrefixer prefixer_;
  // Bytes per (command, stream): printed in all, and received in the current TailLogs.
  std::map<std::pair<std::string, int>, uint64_t> printed_;
  std::map<std::pair<std::string, int>, uint64_t> received_;
};

}  // namespace kfleet::cli

#endif  // KFLEET_CLI_LOG_PRINTER_H_

#include "cli/log_printer.h"

#include "cli/json.h"

namespace kfleet::cli {

LogPrinter::LogPrinter(Io& io, Mode mode, bool stderr_to_err)
    : io_(io), mode_(mode), stderr_to_err_(stderr_to_err), prefixer_(io.out, io.err) {}

absl::Status LogPrinter::Print(const v1::LogData& original) {
  const v1::LogData* msg = &original;
  v1::LogData trimmed;
  if (!original.data().empty()) {
    // TailLogs always starts at the beginning of each log, so counting bytes is enough; it does
    // not depend on how the controller fills in `offset`.
    auto key = std::make_pair(original.command_id(), static_cast<int>(original.stream()));
    uint64_t& received = received_[key];
    uint64_t& printed = printed_[key];
    uint64_t begin = received;
    received += original.data().size();
    if (received <= printed) return absl::OkStatus();  // all of it printed before
    if (begin < printed) {
      trimmed = original;
      trimmed.set_offset(original.offset() + (printed - begin));
      trimmed.set_data(original.data().substr(printed - begin));
      msg = &trimmed;
    }
    printed = received;
  }
  const v1::LogData& data = *msg;
  if (mode_ == Mode::kJson) {
    absl::StatusOr<std::string> json = ToJson(data, JsonStyle::kLine);
    if (!json.ok()) return json.status();
    io_.out << *json;
    io_.out.flush();
    return absl::OkStatus();
  }
  if (data.data().empty()) return absl::OkStatus();
  bool to_err = stderr_to_err_ && data.stream() == v1::STDERR;
  if (mode_ == Mode::kRaw) {
    std::ostream& os = to_err ? io_.err : io_.out;
    os.write(data.data().data(), static_cast<std::streamsize>(data.data().size()));
    os.flush();
    if (!os) return absl::DataLossError("cannot write the log to standard output");
    return absl::OkStatus();
  }
  prefixer_.Write(data.command_id(), data.stream(), data.host_name(), to_err, data.data());
  return absl::OkStatus();
}

void LogPrinter::Restart() { received_.clear(); }

void LogPrinter::Finish() {
  if (mode_ == Mode::kPrefixed) prefixer_.Flush();
  io_.out.flush();
  io_.err.flush();
}

}  // namespace kfleet::cli

#include "controller/provision/exec_provider.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/status_macros.h"
#include "controller/provision/host_command.h"

namespace kfleet::controller::provision {
namespace {

nlohmann::json SpecJson(const GuestSpec& spec) {
  nlohmann::json j;
  j["op"] = "create";
  j["name"] = spec.name;
  j["pool"] = spec.pool;
  j["cpus"] = spec.cpus;
  j["memory_mib"] = spec.memory_mib;
  j["disks"] = nlohmann::json::array();
  for (const DiskSpec& d : spec.disks) {
    j["disks"].push_back({{"name", d.name}, {"size_mib", d.size_mib}});
  }
  j["kernel"] = spec.kernel;
  j["initrd"] = spec.initrd;
  j["cmdline"] = spec.cmdline;
  j["base_image"] = spec.base_image;
  j["settings"] = spec.settings;
  // The guest's own token and the CA it is to trust, for the command to hand to the guest (cloud
  // user-data); other fw_cfg entries mean nothing off qemu.
  auto token = spec.fw_cfg.find(kTokenFwCfgName);
  if (token != spec.fw_cfg.end()) {
    auto ca = spec.fw_cfg.find(kCaCertFwCfgName);
    j["enrolment"] = {{"token", token->second},
                      {"ca_pem", ca != spec.fw_cfg.end() ? ca->second : std::string()}};
  }
  return j;
}

std::string Tail(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

}  // namespace

absl::StatusOr<std::string> ExecProvider::Run(const std::string& op, const std::string& command,
                                              const std::string& request) {
  RETURN_IF_ERROR(MakeDirs(options_.work_dir));
  std::string base = absl::StrCat(options_.work_dir, "/", NewId(op + "-"));
  std::string in = base + ".in", out = base + ".out", err = base + ".err";
  RETURN_IF_ERROR(WriteFileAtomic(in, request));
  // The command's stdin, stdout and stderr are files, so stdout stays clean JSON.
  absl::StatusOr<HostCommandResult> r =
      RunHostCommand({"/bin/sh", "-c", absl::StrCat("exec <\"$1\" >\"$2\" 2>\"$3\"; ", command),
                      "kfleet-exec-provider", in, out, err},
                     options_.timeout);
  absl::StatusOr<std::string> stdout_text = ReadFile(out, 1 << 20);
  absl::StatusOr<std::string> stderr_text = ReadFile(err, 1 << 20);
  for (const std::string& f : {in, out, err}) ::unlink(f.c_str());
  if (!r.ok()) return r.status();
  if (r->stopped || r->exit_code != 0) {
    return absl::UnavailableError(absl::StrCat(
        "exec provider ", op, " command failed (", r->stopped ? "timed out" : "exit status ",
        r->stopped ? "" : absl::StrCat(r->exit_code),
        "): ", stderr_text.ok() ? Tail(*stderr_text, 2000) : ""));
  }
  return stdout_text.ok() ? *stdout_text : std::string();
}

absl::StatusOr<GuestInfo> ExecProvider::Create(const GuestSpec& spec) {
  ASSIGN_OR_RETURN(std::string out, Run("create", options_.create, SpecJson(spec).dump()));
  GuestInfo info;
  info.name = spec.name;
  info.running = true;
  info.accel = "exec";
  nlohmann::json reply = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (reply.is_object() && reply.contains("console_path") && reply["console_path"].is_string()) {
    info.console_path = reply["console_path"].get<std::string>();
  }
  absl::MutexLock lock(&mu_);
  guests_[spec.name] = info;
  specs_[spec.name] = spec;
  return info;
}

absl::Status ExecProvider::Destroy(const std::string& name) {
  nlohmann::json j = {{"op", "destroy"}, {"name", name}};
  RETURN_IF_ERROR(Run("destroy", options_.destroy, j.dump()).status());
  absl::MutexLock lock(&mu_);
  guests_.erase(name);
  specs_.erase(name);
  return absl::OkStatus();
}

absl::Status ExecProvider::PowerCycle(const std::string& name) {
  if (!options_.power_cycle.empty()) {
    nlohmann::json j = {{"op", "power_cycle"}, {"name", name}};
    return Run("power_cycle", options_.power_cycle, j.dump()).status();
  }
  GuestSpec spec;
  {
    absl::MutexLock lock(&mu_);
    auto it = specs_.find(name);
    if (it == specs_.end()) return absl::NotFoundError(absl::StrCat("no guest ", name));
    spec = it->second;
  }
  RETURN_IF_ERROR(Destroy(name));
  return Create(spec).status();
}

absl::Status ExecProvider::SetKernel(const std::string& name, const std::string& kernel,
                                     const std::string& initrd) {
  absl::MutexLock lock(&mu_);
  auto it = specs_.find(name);
  if (it == specs_.end()) return absl::NotFoundError(absl::StrCat("no guest ", name));
  if (!kernel.empty()) it->second.kernel = kernel;
  if (!initrd.empty()) it->second.initrd = initrd;
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExecProvider::ConsoleLog(const std::string& name, size_t max_bytes) {
  std::string path;
  {
    absl::MutexLock lock(&mu_);
    auto it = guests_.find(name);
    if (it == guests_.end() || it->second.console_path.empty()) return std::string();
    path = it->second.console_path;
  }
  absl::StatusOr<std::string> text = ReadFile(path, 64 << 20);
  if (!text.ok()) return std::string();
  return Tail(*text, max_bytes);
}

absl::StatusOr<std::vector<GuestInfo>> ExecProvider::List() {
  absl::MutexLock lock(&mu_);
  std::vector<GuestInfo> out;
  for (const auto& [name, info] : guests_) out.push_back(info);
  return out;
}

}  // namespace kfleet::controller::provision

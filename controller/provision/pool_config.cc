#include "controller/provision/pool_config.h"

#include <yaml-cpp/yaml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/duration.h"
#include "common/ids.h"

namespace kfleet::controller::provision {
namespace {

// yaml-cpp reports errors by throwing; everything that touches it stays inside ParseLocked's
// try block, and errors become statuses that name the line.
class Parser {
 public:
  Parser(std::string file, const std::set<std::string>& flag_keys)
      : file_(std::move(file)), flag_keys_(flag_keys) {}

  absl::Status Error(const YAML::Node& node, const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, " line ", node.Mark().line + 1, ": ", what));
  }

  absl::StatusOr<std::vector<PoolConfig>> Parse(const std::string& text) {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return DefaultPools();
    if (!root.IsMap()) return Error(root, "expected a mapping with a `pools` key");
    std::vector<PoolConfig> pools;
    bool declared = false;
    for (const auto& top : root) {
      std::string key = top.first.as<std::string>();
      if (flag_keys_.count(key) != 0) continue;  // a flag, read by kfleet-controller's loader
      if (key != "pools") {
        return Error(top.first, absl::StrCat("unknown key \"", key,
                                             "\" (expected pools or a kfleet-controller flag)"));
      }
      declared = true;
      if (!top.second.IsMap()) return Error(top.second, "pools: expected a mapping of pool names");
      for (const auto& p : top.second) {
        PoolConfig pool;
        pool.name = p.first.as<std::string>();
        if (!IsValidId(pool.name) || pool.name.size() > 32) {
          return Error(p.first, absl::StrCat("pool name \"", pool.name,
                                             "\" must be 1-32 characters of [A-Za-z0-9._-]"));
        }
        if (absl::Status s = ParsePool(p.second, &pool); !s.ok()) return s;
        pools.push_back(std::move(pool));
      }
    }
    return declared ? pools : DefaultPools();
  }

 private:
  absl::Status ParsePool(const YAML::Node& node, PoolConfig* pool) {
    if (!node.IsMap())
      return Error(node, absl::StrCat("pool ", pool->name, ": expected a mapping"));
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      std::string where = absl::StrCat("pools.", pool->name, ".", key);
      auto scalar = [&]() -> std::string { return v.IsScalar() ? v.as<std::string>() : ""; };
      if (key == "provider") {
        pool->provider = scalar();
        if (pool->provider != "libvirt" && pool->provider != "exec") {
          return Error(v, absl::StrCat(where, ": \"", pool->provider,
                                       "\" is not a provider (expected libvirt or exec)"));
        }
      } else if (key == "uri") {
        pool->uri = scalar();
      } else if (key == "domain_prefix") {
        pool->domain_prefix = scalar();
        if (pool->domain_prefix.size() > 32 || !IsValidId(pool->domain_prefix)) {
          return Error(v, absl::StrCat(where, ": \"", pool->domain_prefix,
                                       "\" must be 1-32 characters of [A-Za-z0-9._-]"));
        }
      } else if (key == "image") {
        pool->image = scalar();
        if (pool->image != "tiny" && pool->image != "debian") {
          return Error(v, absl::StrCat(where, ": \"", pool->image,
                                       "\" is not an image (expected tiny or debian)"));
        }
      } else if (key == "cpus" || key == "min" || key == "max") {
        uint32_t n = 0;
        if (!absl::SimpleAtoi(scalar(), &n) || n > 1024) {
          return Error(v, absl::StrCat(where, ": expected a number from 0 to 1024"));
        }
        if (key == "cpus") pool->cpus = static_cast<int>(n);
        if (key == "min") pool->min = n;
        if (key == "max") pool->max = n;
      } else if (key == "memory") {
        absl::StatusOr<uint64_t> mib = ParseSizeMib(scalar());
        if (!mib.ok()) return Error(v, absl::StrCat(where, ": ", mib.status().message()));
        pool->memory_mib = *mib;
      } else if (key == "idle_timeout" || key == "boot_timeout") {
        absl::StatusOr<absl::Duration> d = ParseDuration(scalar());
        if (!d.ok()) return Error(v, absl::StrCat(where, ": ", d.status().message()));
        (key == "idle_timeout" ? pool->idle_timeout : pool->boot_timeout) = *d;
      } else if (key == "labels") {
        if (!v.IsMap()) return Error(v, absl::StrCat(where, ": expected a mapping k: v"));
        for (const auto& l : v)
          pool->labels[l.first.as<std::string>()] = l.second.as<std::string>();
      } else if (key == "disks") {
        if (!v.IsSequence()) return Error(v, absl::StrCat(where, ": expected a list"));
        for (const auto& d : v) {
          DiskSpec disk;
          disk.name = d["name"] ? d["name"].as<std::string>() : "";
          if (!IsValidId(disk.name)) {
            return Error(d, absl::StrCat(where, ": each disk needs a name of [A-Za-z0-9._-]"));
          }
          absl::StatusOr<uint64_t> size =
              ParseSizeMib(d["size"] ? d["size"].as<std::string>() : "");
          if (!size.ok()) return Error(d, absl::StrCat(where, ".size: ", size.status().message()));
          disk.size_mib = *size;
          pool->disks.push_back(disk);
        }
      } else if (key == "exec") {
        if (!v.IsMap())
          return Error(v, absl::StrCat(where, ": expected create, destroy, power_cycle"));
        for (const auto& c : v) {
          std::string op = c.first.as<std::string>();
          std::string cmd = c.second.as<std::string>();
          if (op == "create") {
            pool->exec_create = cmd;
          } else if (op == "destroy") {
            pool->exec_destroy = cmd;
          } else if (op == "power_cycle") {
            pool->exec_power_cycle = cmd;
          } else {
            return Error(c.first, absl::StrCat(where, ": unknown \"", op,
                                               "\" (expected create, destroy, power_cycle)"));
          }
        }
      } else {
        return Error(
            kv.first,
            absl::StrCat(
                "unknown field ", where,
                " (expected provider, uri, domain_prefix, image, cpus, memory, disks, min, max, "
                "idle_timeout, boot_timeout, labels, exec)"));
      }
    }
    if (pool->min > pool->max) {
      return Error(node, absl::StrCat("pools.", pool->name, ": min ", pool->min,
                                      " is larger than max ", pool->max));
    }
    if (pool->provider == "exec" && (pool->exec_create.empty() || pool->exec_destroy.empty())) {
      return Error(node, absl::StrCat("pools.", pool->name,
                                      ": the exec provider needs exec.create and exec.destroy"));
    }
    pool->labels["pool"] = pool->name;
    return absl::OkStatus();
  }

  std::string file_;
  const std::set<std::string>& flag_keys_;
};

}  // namespace

std::vector<PoolConfig> DefaultPools() {
  PoolConfig local;
  local.name = "local";
  local.labels["pool"] = "local";
  return {local};
}

absl::StatusOr<uint64_t> ParseSizeMib(const std::string& text) {
  std::string t(absl::StripAsciiWhitespace(text));
  uint64_t mult = 1;
  if (!t.empty() && (t.back() == 'G' || t.back() == 'g')) {
    mult = 1024;
    t.pop_back();
  } else if (!t.empty() && (t.back() == 'M' || t.back() == 'm')) {
    t.pop_back();
  }
  uint64_t n = 0;
  if (t.empty() || !absl::SimpleAtoi(t, &n) || n == 0 || n > (1ull << 30) / mult) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid size \"", text.substr(0, 32), "\": write e.g. 512M or 4G"));
  }
  return n * mult;
}

absl::StatusOr<std::vector<PoolConfig>> ParsePoolConfig(const std::string& text,
                                                        const std::string& file_name,
                                                        const std::set<std::string>& flag_keys) {
  Parser parser(file_name, flag_keys);
  try {
    return parser.Parse(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, " line ", e.mark.line + 1, ": ", e.msg, " (is it YAML?)"));
  }
}

}  // namespace kfleet::controller::provision

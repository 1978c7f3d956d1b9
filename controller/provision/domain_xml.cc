#include "controller/provision/domain_xml.h"

#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/ids.h"

namespace kfleet::controller::provision {
namespace {

constexpr int kMaxCpus = 256;
constexpr uint64_t kMinMemoryMib = 64;
constexpr uint64_t kMaxMemoryMib = 4 << 20;
constexpr size_t kMaxDisks = 24;     // vdb..vdy
constexpr size_t kMaxDiskName = 20;  // virtio-blk serial limit
// qemu has 32 fw_cfg file slots by default and fills some itself (ACPI tables, boot order...).
constexpr size_t kMaxFwCfgEntries = 8;
constexpr size_t kMaxFwCfgName = 55;  // qemu's FW_CFG_MAX_FILE_PATH, less the NUL
constexpr size_t kMaxFwCfgContent = 64 << 10;

bool IsFileName(absl::string_view s) { return IsValidId(s) && s[0] != '.' && s[0] != '-'; }

bool HasControl(absl::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

bool IsSettingKey(absl::string_view k) {
  if (k.empty()) return false;
  for (char c : k) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// A fw_cfg file name that qemu, libvirt and the guest's sysfs (one directory per '/') all take:
// "opt/" and then parts of [a-z0-9._-], none empty, "." or "..".
bool IsFwCfgName(absl::string_view name) {
  if (name.size() > kMaxFwCfgName || !absl::StartsWith(name, "opt/")) return false;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part) {
      if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '.' && c != '_' && c != '-') {
        return false;
      }
    }
  }
  return true;
}

// Text that XML carries unchanged: printable ASCII, tabs and newlines (a parser turns CR into LF,
// and most control characters may not appear in XML at all).
bool IsFwCfgText(absl::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x7f || (u < 0x20 && c != '\n' && c != '\t')) return false;
  }
  return true;
}

// The contents are secrets: messages name the entry, never what it holds.
absl::Status CheckFwCfg(const std::map<std::string, std::string>& entries) {
  if (entries.size() > kMaxFwCfgEntries) {
    return absl::InvalidArgumentError(
        absl::StrCat(entries.size(), " fw_cfg entries: at most ", kMaxFwCfgEntries));
  }
  for (const auto& [name, content] : entries) {
    if (!IsFwCfgName(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fw_cfg entry \"", absl::CEscape(name), "\": expected at most ", kMaxFwCfgName,
          " characters, \"opt/\" and then parts of [a-z0-9._-] separated by '/'"));
    }
    if (name == kSettingsFwCfgName) {
      return absl::InvalidArgumentError(
          absl::StrCat("fw_cfg entry \"", name,
                       "\" is reserved for the kfleet.* settings (GuestSpec.settings)"));
    }
    if (content.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("fw_cfg entry \"", name, "\" is empty"));
    }
    if (content.size() > kMaxFwCfgContent) {
      return absl::InvalidArgumentError(absl::StrCat("fw_cfg entry \"", name, "\" holds ",
                                                     content.size(), " bytes: at most ",
                                                     kMaxFwCfgContent));
    }
    if (!IsFwCfgText(content)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fw_cfg entry \"", name, "\" holds bytes other than printable ASCII, tabs and newlines"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPath(absl::string_view field, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  if (path[0] != '/' || HasControl(path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("guest ", field, " \"", path, "\": expected an absolute path"));
  }
  return absl::OkStatus();
}

// qemu's option parser splits on ',' and reads ",," as a literal comma.
std::string QemuOptEscape(absl::string_view s) { return absl::StrReplaceAll(s, {{",", ",,"}}); }

// The virtio-net device's slot, clear of the ones libvirt hands out from the bottom.
absl::StatusOr<std::string> NetDeviceAddress(absl::string_view machine) {
  if (machine == "q35") return std::string("bus=pcie.0,addr=0x10");
  if (machine == "pc") return std::string("bus=pci.0,addr=0x1f");
  return absl::InvalidArgumentError(
      absl::StrCat("machine \"", machine, "\": expected \"q35\" or \"pc\""));
}

std::string DiskTarget(size_t index) { return absl::StrCat("vd", std::string(1, 'a' + index)); }

void AppendDisk(std::string* xml, absl::string_view format, const std::string& path,
                absl::string_view target, absl::string_view serial) {
  absl::StrAppend(xml, "    <disk type='file' device='disk'>\n", "      <driver name='qemu' type='",
                  format, "' discard='unmap'/>\n", "      <source file='", XmlEscape(path), "'/>\n",
                  "      <target dev='", target, "' bus='virtio'/>\n");
  if (!serial.empty()) absl::StrAppend(xml, "      <serial>", XmlEscape(serial), "</serial>\n");
  absl::StrAppend(xml, "    </disk>\n");
}

std::string XmlUnescape(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&lt;", "<"},
                                 {"&gt;", ">"},
                                 {"&quot;", "\""},
                                 {"&apos;", "'"},
                                 {"&#39;", "'"},
                                 {"&#34;", "\""},
                                 {"&amp;", "&"}});
}

// The value of attribute `name` in the first tag of `element`, quoted either way.
std::optional<std::string> Attribute(absl::string_view element, absl::string_view name) {
  size_t end = element.find('>');
  absl::string_view tag = element.substr(0, end);
  for (size_t pos = 0; (pos = tag.find(name, pos)) != absl::string_view::npos; ++pos) {
    if (pos == 0 || !absl::ascii_isspace(tag[pos - 1])) continue;
    size_t eq = pos + name.size();
    if (eq + 1 >= tag.size() || tag[eq] != '=') continue;
    char quote = tag[eq + 1];
    if (quote != '"' && quote != '\'') continue;
    size_t close = tag.find(quote, eq + 2);
    if (close == absl::string_view::npos) return std::nullopt;
    return XmlUnescape(tag.substr(eq + 2, close - eq - 2));
  }
  return std::nullopt;
}

// Replaces the text of <tag>...</tag> in `xml`; false if there is no such element.
bool ReplaceElementText(std::string* xml, absl::string_view tag, const std::string& text) {
  const std::string open = absl::StrCat("<", tag, ">");
  const std::string close = absl::StrCat("</", tag, ">");
  size_t start = xml->find(open);
  if (start == std::string::npos) return false;
  start += open.size();
  size_t end = xml->find(close, start);
  if (end == std::string::npos) return false;
  xml->replace(start, end - start, XmlEscape(text));
  return true;
}

// "kfleet.KEY=VALUE"; a key may already carry the prefix.
std::string Setting(const std::string& key, const std::string& value) {
  return absl::StrCat(absl::StartsWith(key, "kfleet.") ? "" : "kfleet.", key, "=", value);
}

}  // namespace

std::string XmlEscape(absl::string_view s) {
  return absl::StrReplaceAll(
      s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&apos;"}});
}

absl::Status ValidateGuestSpec(const GuestSpec& spec) {
  if (!IsFileName(spec.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("guest name \"", spec.name,
                     "\": expected 1 to 64 of [A-Za-z0-9._-], not starting with '.' or '-'"));
  }
  const std::string who = absl::StrCat("guest ", spec.name, ": ");
  if (!spec.pool.empty() && !IsValidId(spec.pool)) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, "pool \"", spec.pool, "\": expected 1 to 64 of [A-Za-z0-9._-]"));
  }
  if (spec.cpus < 1 || spec.cpus > kMaxCpus) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, "cpus ", spec.cpus, ": expected 1 to ", kMaxCpus));
  }
  if (spec.memory_mib < kMinMemoryMib || spec.memory_mib > kMaxMemoryMib) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, "memory ", spec.memory_mib, " MiB: expected ", kMinMemoryMib, " to ", kMaxMemoryMib));
  }
  if (spec.kernel.empty() && spec.base_image.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(who, "needs a kernel or a base image"));
  }
  if (!spec.initrd.empty() && spec.kernel.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(who, "an initrd needs a kernel"));
  }
  for (auto [field, path] : {std::pair<const char*, const std::string*>{"kernel", &spec.kernel},
                             {"initrd", &spec.initrd},
                             {"base image", &spec.base_image}}) {
    absl::Status s = CheckPath(field, *path);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(who, s.message()));
  }
  if (spec.disks.size() > kMaxDisks) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, spec.disks.size(), " disks: at most ", kMaxDisks));
  }
  std::set<std::string> disk_names;
  for (const DiskSpec& d : spec.disks) {
    if (!IsFileName(d.name) || d.name.size() > kMaxDiskName) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, "disk name \"", d.name, "\": expected 1 to ", kMaxDiskName, " of [A-Za-z0-9._-]"));
    }
    if (!disk_names.insert(d.name).second) {
      return absl::InvalidArgumentError(absl::StrCat(who, "disk \"", d.name, "\" appears twice"));
    }
    if (d.size_mib == 0) {
      return absl::InvalidArgumentError(absl::StrCat(who, "disk \"", d.name, "\" has size 0"));
    }
  }
  if (HasControl(spec.cmdline)) {
    return absl::InvalidArgumentError(absl::StrCat(who, "cmdline has control characters"));
  }
  for (const auto& [key, value] : spec.settings) {
    if (!IsSettingKey(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, "setting \"", key, "\": keys are [A-Za-z0-9._-]"));
    }
    if (HasControl(value) || absl::StrContains(value, ' ') || absl::StrContains(value, '"')) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, "setting ", key, "=\"", value,
                       "\": values may not hold spaces, quotes or control characters"));
    }
  }
  if (absl::Status s = CheckFwCfg(spec.fw_cfg); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(who, s.message()));
  }
  if (spec.controller_port < 0 || spec.controller_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, "controller port ", spec.controller_port, ": expected 0 to 65535"));
  }
  return absl::OkStatus();
}

std::string KernelCmdline(const GuestSpec& spec) {
  std::vector<std::string> parts;
  absl::string_view user = absl::StripAsciiWhitespace(spec.cmdline);
  if (!user.empty()) parts.emplace_back(user);
  parts.emplace_back("console=ttyS0");
  for (const auto& [key, value] : spec.settings) parts.push_back(Setting(key, value));
  return absl::StrJoin(parts, " ");
}

absl::StatusOr<std::string> DomainXml(const GuestSpec& spec, const DomainOptions& options) {
  absl::Status valid = ValidateGuestSpec(spec);
  if (!valid.ok()) return valid;
  const std::string who = absl::StrCat("guest ", spec.name, ": ");
  if (options.accel != "kvm" && options.accel != "tcg") {
    return absl::InvalidArgumentError(
        absl::StrCat(who, "accel \"", options.accel, "\": expected \"kvm\" or \"tcg\""));
  }
  absl::StatusOr<std::string> net_address = NetDeviceAddress(options.machine);
  if (!net_address.ok()) return net_address.status();
  if (options.console_path.empty() || options.disk_paths.size() != spec.disks.size() ||
      options.overlay_path.empty() != spec.base_image.empty() ||
      options.relay_command.empty() != (spec.controller_port == 0) ||
      HasControl(options.relay_command)) {
    return absl::InvalidArgumentError(absl::StrCat(
        who,
        "domain options do not match the spec (console path, one disk path per disk, an "
        "overlay iff a base image, a relay command iff a controller port)"));
  }

  std::string xml = absl::StrCat(
      "<domain type='", options.accel == "kvm" ? "kvm" : "qemu",
      "' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n", "  <name>",
      options.domain_prefix, spec.name, "</name>\n", "  <metadata>\n",
      "    <kfleet:guest xmlns:kfleet='", kMetadataNamespace, "' pool='", XmlEscape(spec.pool),
      "' accel='", options.accel, "' console='", XmlEscape(options.console_path), "'/>\n",
      "  </metadata>\n", "  <memory unit='MiB'>", spec.memory_mib, "</memory>\n",
      "  <vcpu placement='static'>", spec.cpus, "</vcpu>\n");
  // One <sysinfo type='fwcfg'> holds every entry, the settings first.
  if (!spec.settings.empty() || !spec.fw_cfg.empty()) {
    absl::StrAppend(&xml, "  <sysinfo type='fwcfg'>\n");
    if (!spec.settings.empty()) {
      absl::StrAppend(&xml, "    <entry name='", kSettingsFwCfgName, "'>");
      for (const auto& [key, value] : spec.settings) {
        absl::StrAppend(&xml, XmlEscape(Setting(key, value)), "\n");
      }
      absl::StrAppend(&xml, "</entry>\n");
    }
    for (const auto& [name, content] : spec.fw_cfg) {
      absl::StrAppend(&xml, "    <entry name='", XmlEscape(name), "'>", XmlEscape(content),
                      "</entry>\n");
    }
    absl::StrAppend(&xml, "  </sysinfo>\n");
  }
  absl::StrAppend(&xml, "  <os>\n", "    <type arch='x86_64' machine='", options.machine,
                  "'>hvm</type>\n");
  if (!spec.kernel.empty()) {
    absl::StrAppend(&xml, "    <kernel>", XmlEscape(spec.kernel), "</kernel>\n");
    if (!spec.initrd.empty()) {
      absl::StrAppend(&xml, "    <initrd>", XmlEscape(spec.initrd), "</initrd>\n");
    }
    absl::StrAppend(&xml, "    <cmdline>", XmlEscape(KernelCmdline(spec)), "</cmdline>\n");
  } else {
    absl::StrAppend(&xml, "    <boot dev='hd'/>\n");
  }
  absl::StrAppend(&xml, "  </os>\n", "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n");
  if (options.accel == "kvm") absl::StrAppend(&xml, "  <cpu mode='host-passthrough'/>\n");
  absl::StrAppend(&xml, "  <clock offset='utc'/>\n", "  <on_poweroff>destroy</on_poweroff>\n",
                  "  <on_reboot>restart</on_reboot>\n", "  <on_crash>destroy</on_crash>\n",
                  "  <devices>\n");
  if (!spec.base_image.empty()) AppendDisk(&xml, "qcow2", options.overlay_path, "vda", "");
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    AppendDisk(&xml, "raw", options.disk_paths[i], DiskTarget(i + 1), spec.disks[i].name);
  }
  const std::string console = XmlEscape(options.console_path);
  absl::StrAppend(
      &xml, "    <controller type='usb' model='none'/>\n", "    <serial type='file'>\n",
      "      <source path='", console, "' append='on'/>\n", "      <target port='0'/>\n",
      "    </serial>\n", "    <console type='file'>\n", "      <source path='", console,
      "' append='on'/>\n", "      <target type='serial' port='0'/>\n", "    </console>\n",
      "    <rng model='virtio'>\n", "      <backend model='random'>/dev/urandom</backend>\n",
      "    </rng>\n", "    <memballoon model='none'/>\n", "  </devices>\n");
  if (spec.controller_port != 0) {
    const std::string netdev =
        absl::StrCat("user,id=kf0,restrict=on,guestfwd=tcp:", kGuestControllerIp, ":",
                     spec.controller_port, "-cmd:", QemuOptEscape(options.relay_command));
    absl::StrAppend(&xml, "  <qemu:commandline>\n", "    <qemu:arg value='-netdev'/>\n",
                    "    <qemu:arg value='", XmlEscape(netdev), "'/>\n",
                    "    <qemu:arg value='-device'/>\n",
                    "    <qemu:arg value='virtio-net-pci,netdev=kf0,", *net_address, "'/>\n",
                    "  </qemu:commandline>\n");
  }
  absl::StrAppend(&xml, "</domain>\n");
  return xml;
}

std::optional<GuestMetadata> ParseGuestMetadata(absl::string_view element) {
  element = absl::StripLeadingAsciiWhitespace(element);
  if (!absl::StartsWith(element, "<")) return std::nullopt;
  size_t name_end = element.find_first_of(" \t\r\n/>");
  absl::string_view tag = element.substr(1, name_end - 1);
  size_t colon = tag.find(':');
  if ((colon == absl::string_view::npos ? tag : tag.substr(colon + 1)) != "guest") {
    return std::nullopt;
  }
  GuestMetadata m;
  m.pool = Attribute(element, "pool").value_or("");
  m.accel = Attribute(element, "accel").value_or("");
  m.console_path = Attribute(element, "console").value_or("");
  return m;
}

absl::StatusOr<std::string> ReplaceBootFiles(absl::string_view domain_xml,
                                             const std::string& kernel, const std::string& initrd) {
  for (auto [field, path] :
       {std::pair<const char*, const std::string*>{"kernel", &kernel}, {"initrd", &initrd}}) {
    absl::Status s = CheckPath(field, *path);
    if (!s.ok()) return s;
  }
  std::string xml(domain_xml);
  size_t kernel_end = xml.find("</kernel>");
  if (kernel_end == std::string::npos || xml.find("<kernel>") == std::string::npos) {
    return absl::FailedPreconditionError("the guest boots from disk, not a kernel of its own");
  }
  if (!kernel.empty()) ReplaceElementText(&xml, "kernel", kernel);
  if (!initrd.empty() && !ReplaceElementText(&xml, "initrd", initrd)) {
    kernel_end = xml.find("</kernel>") + std::string("</kernel>").size();
    xml.insert(kernel_end, absl::StrCat("\n    <initrd>", XmlEscape(initrd), "</initrd>"));
  }
  return xml;
}

}  // namespace kfleet::controller::provision

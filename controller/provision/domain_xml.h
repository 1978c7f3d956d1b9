// The libvirt domain XML of a kfleet guest, and the few edits and reads the provider makes on
// domain XML libvirt hands back. Pure functions: no libvirt calls, no file access.
#ifndef KFLEET_CONTROLLER_PROVISION_DOMAIN_XML_H_
#define KFLEET_CONTROLLER_PROVISION_DOMAIN_XML_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controller/provision/provider.h"

namespace kfleet::controller::provision {

// The namespace of the <metadata> element that marks a domain as a kfleet guest.
inline constexpr char kMetadataNamespace[] = "https://kfleet.dev/xmlns/libvirt-guest/1";
// fw_cfg file holding the kfleet.* settings, one `kfleet.KEY=VALUE` a line, for images that do
// not boot directly (guest: /sys/firmware/qemu_fw_cfg/by_name/opt/kfleet/settings/raw).
inline constexpr char kSettingsFwCfgName[] = "opt/kfleet/settings";

// Where the provider put the guest's files, and how it runs.
struct DomainOptions {
  std::string accel = "tcg";            // "kvm" or "tcg"
  std::string machine = "q35";          // "q35" or "pc"
  std::string console_path;             // serial console log file; required
  std::string overlay_path;             // qcow2 overlay of spec.base_image; required iff it is set
  std::vector<std::string> disk_paths;  // raw file for each of spec.disks, in order
  // Run by qemu for each guest connection to kGuestControllerIp:spec.controller_port, talking on
  // stdin/stdout (e.g. "socat - TCP:127.0.0.1:7000"); required iff controller_port is not 0. With
  // controller_port 0 the guest has no network at all.
  std::string relay_command;
  // The libvirt domain is named domain_prefix + spec.name, so that controllers sharing one
  // libvirtd do not take each other's guests.
  std::string domain_prefix;
};

// Checks what DomainXml needs of a spec: name (also a file name: [A-Za-z0-9._-], not starting
// with '.' or '-'), sizes, absolute paths, a kernel or a base image, disk names (unique, at most
// 20 characters), settings (keys [A-Za-z0-9._-], values without spaces, quotes or control
// characters), fw_cfg entries (at most 8; names of at most 55 characters, "opt/" and then parts of
// [a-z0-9._-] separated by '/', not kSettingsFwCfgName; content of 1 byte to 64 KiB of printable
// ASCII, tabs and newlines). InvalidArgument naming the field otherwise; a message never holds the
// content of an fw_cfg entry.
absl::Status ValidateGuestSpec(const GuestSpec& spec);

// The direct-boot kernel command line: spec.cmdline, console=ttyS0, then kfleet.KEY=VALUE for
// each setting (sorted by key; a key that already starts with "kfleet." is not prefixed again).
// Precondition: ValidateGuestSpec(spec) is OK.
std::string KernelCmdline(const GuestSpec& spec);

// The domain XML: a persistent-definable domain (no uuid: libvirt picks one) of type kvm or
// qemu; direct kernel boot if spec.kernel is set, else disk boot from the overlay (vda); extra
// disks as raw virtio disks vdb, vdc... in spec order, whose serial is the disk's name (the
// guest names virtio disks in probe order, so without an overlay they are its vda, vdb...; by
// name they are /dev/disk/by-id/virtio-NAME or /sys/block/vd*/serial); the serial console appended
// to console_path; the restricted user-mode network forwarding only the controller port; one
// <sysinfo type='fwcfg'> (libvirt >= 6.5) holding the settings (kSettingsFwCfgName) and
// spec.fw_cfg; and kfleet <metadata> with pool, accel and console path. All values are
// XML-escaped. InvalidArgument for a bad spec or options. The XML holds spec.fw_cfg's secrets:
// callers must not log it.
absl::StatusOr<std::string> DomainXml(const GuestSpec& spec, const DomainOptions& options);

// What the kfleet <metadata> element records.
struct GuestMetadata {
  std::string pool;
  std::string accel;
  std::string console_path;
};

// Reads the element libvirt returns for kMetadataNamespace (virDomainGetMetadata), which comes
// back without its namespace: `<guest pool="..." accel="..." console="..."/>`. nullopt if it is
// not a guest element.
std::optional<GuestMetadata> ParseGuestMetadata(absl::string_view element);

// Rewrites the <kernel> and <initrd> of a domain's XML (as libvirt formats it); an empty argument
// keeps the current one. FailedPrecondition if the domain does not boot a kernel directly.
absl::StatusOr<std::string> ReplaceBootFiles(absl::string_view domain_xml,
                                             const std::string& kernel, const std::string& initrd);

// `s` with & < > " ' replaced by entities.
std::string XmlEscape(absl::string_view s);

}  // namespace kfleet::controller::provision

#endif  // KFLEET_CONTROLLER_PROVISION_DOMAIN_XML_H_

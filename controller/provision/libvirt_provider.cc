#include "controller/provision/libvirt_provider.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "controller/provision/accel.h"
#include "controller/provision/guest_files.h"
#include "controller/provision/host_command.h"

namespace kfleet::controller::provision {
namespace {

constexpr char kConsoleFile[] = "console.log";
constexpr char kOverlayFile[] = "overlay.qcow2";
constexpr char kBootKernelFile[] = "boot-vmlinuz";  // SetKernel's copies
constexpr char kBootInitrdFile[] = "boot-initrd.img";
constexpr char kOnceKernelFile[] = "once-vmlinuz";  // BootOnce's copies
constexpr char kOnceInitrdFile[] = "once-initrd.img";
constexpr absl::Duration kQemuImgTimeout = absl::Seconds(60);

// Frees what libvirt hands back with malloc.
struct CharFreer {
  void operator()(char* p) const { std::free(p); }
};
using LibvirtString = std::unique_ptr<char, CharFreer>;

// Under qemu:///system qemu runs as its own user (libvirt relabels the files it opens, but not
// the directories on the way to them).
absl::Status CheckQemuReaches(const std::string& what, const std::string& path,
                              const std::string& uri) {
  if (uri != "qemu:///system") return absl::OkStatus();
  std::string dir = UnsearchableDir(path);
  if (dir.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      what, " ", path, ": qemu runs as its own user under ", uri, " and cannot reach it: ", dir,
      " is not searchable by others (chmod o+x it, or use a directory such as /var/lib/kfleet)"));
}

absl::Status CheckGuestName(const std::string& name) {
  if (IsValidId(name) && name[0] != '.' && name[0] != '-') return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("guest name \"", name, "\" is not valid"));
}

// "qemu:///system" is this host; "qemu+ssh://host/system" is not.
bool IsLocalUri(const std::string& uri) {
  size_t sep = uri.find("://");
  return sep != std::string::npos && absl::StartsWith(uri.substr(sep + 3), "/");
}

// Hard power off, if the domain runs.
absl::Status PowerOff(virDomainPtr dom, const std::string& name) {
  if (virDomainIsActive(dom) != 1 || virDomainDestroy(dom) == 0) return absl::OkStatus();
  absl::Status s = LibvirtError(name, "power off");
  if (virDomainIsActive(dom) == 0) return absl::OkStatus();  // it stopped by itself meanwhile
  return s;
}

// The guest's kfleet metadata, or nullopt if the domain is not a kfleet guest.
std::optional<GuestMetadata> ReadMetadata(virDomainPtr dom) {
  LibvirtString element(
      virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, kMetadataNamespace, 0));
  if (element == nullptr) return std::nullopt;
  return ParseGuestMetadata(element.get());
}

}  // namespace

class LibvirtProvider::GuestLock {
 public:
  GuestLock(LibvirtProvider* p, const std::string& name) : p_(p), name_(name) {
    absl::MutexLock l(&p_->names_mu_);
    auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(p_->names_mu_) {
      return p_->busy_.count(name_) == 0;
    };
    p_->names_mu_.Await(absl::Condition(&free));
    p_->busy_.insert(name_);
  }
  ~GuestLock() {
    absl::MutexLock l(&p_->names_mu_);
    p_->busy_.erase(name_);
  }
  GuestLock(const GuestLock&) = delete;
  GuestLock& operator=(const GuestLock&) = delete;

 private:
  LibvirtProvider* const p_;
  const std::string name_;
};

absl::StatusOr<std::unique_ptr<LibvirtProvider>> LibvirtProvider::Open(
    const LibvirtOptions& options) {
  if (options.work_dir.empty() || options.work_dir[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("libvirt work dir \"", options.work_dir, "\": expected an absolute path"));
  }
  if (!options.accel.empty() && options.accel != kAccelKvm && options.accel != kAccelTcg) {
    return absl::InvalidArgumentError(
        absl::StrCat("accel \"", options.accel, "\": expected \"kvm\", \"tcg\" or empty"));
  }
  if (options.machine != "q35" && options.machine != "pc") {
    return absl::InvalidArgumentError(
        absl::StrCat("machine \"", options.machine, "\": expected \"q35\" or \"pc\""));
  }
  if (options.relay_command.empty()) {
    return absl::InvalidArgumentError("relay command is empty");
  }
  RETURN_IF_ERROR(MakeSharedDir(options.work_dir));
  if (IsLocalUri(options.uri)) {
    RETURN_IF_ERROR(CheckQemuReaches("libvirt work dir", options.work_dir, options.uri));
  }
  absl::StatusOr<ConnectHandle> conn = OpenConnection(options.uri);
  if (!conn.ok()) return conn.status();
  bool forbidden = RelayForbidden(conn->get());
  if (forbidden) {
    LogWarning(absl::StrCat("libvirt at ", options.uri,
                            " runs qemu with -sandbox spawn=deny: guests cannot reach the "
                            "controller until qemu.conf has seccomp_sandbox = 0"));
  }
  return std::unique_ptr<LibvirtProvider>(
      new LibvirtProvider(options, *std::move(conn), IsLocalUri(options.uri), forbidden));
}

LibvirtProvider::LibvirtProvider(const LibvirtOptions& options, ConnectHandle conn, bool local,
                                 bool relay_forbidden)
    : options_(options), local_(local), conn_(std::move(conn)), relay_forbidden_(relay_forbidden) {}

std::string LibvirtProvider::GuestDir(const std::string& name) const {
  return absl::StrCat(options_.work_dir, "/", name);
}

bool LibvirtProvider::RelayForbidden(virConnectPtr conn) {
  static constexpr char kProbe[] =
      "<domain type='qemu'><name>kfleet-sandbox-probe</name><memory unit='MiB'>64</memory>"
      "<os><type arch='x86_64'>hvm</type></os></domain>";
  LibvirtString argv(virConnectDomainXMLToNative(conn, "qemu-argv", kProbe, 0));
  if (argv == nullptr) {
    LogWarning(
        absl::StrCat("cannot tell whether libvirt's seccomp sandbox allows the guest "
                     "relay: ",
                     LibvirtError("", "domxml-to-native").message()));
    return false;
  }
  return absl::StrContains(argv.get(), "spawn=deny");
}

absl::Status LibvirtProvider::EnsureConnected() {
  // A round trip, not just virConnectIsAlive: without an event loop the client only notices
  // that libvirtd went away (restart, upgrade) when a call fails.
  auto answers = [](virConnectPtr conn) {
    unsigned long version = 0;
    return virConnectIsAlive(conn) == 1 && virConnectGetLibVersion(conn, &version) == 0;
  };
  {
    absl::ReaderMutexLock l(&conn_mu_);
    if (answers(conn_.get())) return absl::OkStatus();
  }
  absl::MutexLock l(&conn_mu_);
  if (answers(conn_.get())) return absl::OkStatus();
  absl::StatusOr<ConnectHandle> conn = OpenConnection(options_.uri);
  if (!conn.ok()) return conn.status();
  LogInfo(absl::StrCat("reconnected to libvirt at ", options_.uri));
  conn_ = *std::move(conn);
  relay_forbidden_ = RelayForbidden(conn_.get());
  return absl::OkStatus();
}

absl::StatusOr<DomainHandle> LibvirtProvider::LookupGuest(const std::string& name) {
  absl::StatusOr<DomainHandle> dom = LookupDomain(conn_.get(), options_.domain_prefix + name);
  if (!dom.ok()) return dom.status();
  if (!ReadMetadata(dom->get()).has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "domain ", name, " exists but is not a kfleet guest (no kfleet metadata); leaving it"));
  }
  return dom;
}

absl::StatusOr<std::string> LibvirtProvider::Accel(const std::string& kernel) {
  if (!options_.accel.empty()) return options_.accel;
  absl::MutexLock l(&accel_mu_);
  if (accel_.empty()) {
    if (local_) {
      accel_ = DetectAccel(kernel, options_.work_dir);
    } else {
      LibvirtString caps(
          virConnectGetDomainCapabilities(conn_.get(), nullptr, "x86_64", nullptr, "kvm", 0));
      accel_ = caps != nullptr ? kAccelKvm : kAccelTcg;
    }
    LogInfo(absl::StrCat("libvirt at ", options_.uri, ": guests run with ", accel_));
  }
  return accel_;
}

absl::Status LibvirtProvider::CheckReadable(const std::string& what,
                                            const std::string& path) const {
  if (!local_ || path.empty()) return absl::OkStatus();
  if (::access(path.c_str(), R_OK) != 0) return ErrnoStatus(absl::StrCat(what, " ", path), errno);
  return CheckQemuReaches(what, path, options_.uri);
}

absl::Status LibvirtProvider::MakeGuestFiles(const GuestSpec& spec, DomainOptions* options) {
  const std::string dir = GuestDir(spec.name);
  RETURN_IF_ERROR(MakeSharedDir(dir));
  // Made here, not by libvirt, so that it is readable without root (libvirt would make it 0600).
  options->console_path = absl::StrCat(dir, "/", kConsoleFile);
  RETURN_IF_ERROR(MakeSparseFile(options->console_path, 0));
  if (!spec.base_image.empty()) {
    options->overlay_path = absl::StrCat(dir, "/", kOverlayFile);
    absl::StatusOr<HostCommandResult> r =
        RunHostCommand({"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                        spec.base_image, options->overlay_path},
                       kQemuImgTimeout);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      return absl::InternalError(
          absl::StrCat("qemu-img create of the overlay failed: ", r->output));
    }
  }
  for (const DiskSpec& disk : spec.disks) {
    std::string path = absl::StrCat(dir, "/disk-", disk.name, ".img");
    RETURN_IF_ERROR(MakeSparseFile(path, disk.size_mib << 20));
    options->disk_paths.push_back(std::move(path));
  }
  return absl::OkStatus();
}

absl::StatusOr<GuestInfo> LibvirtProvider::Create(const GuestSpec& spec) {
  RETURN_IF_ERROR(ValidateGuestSpec(spec));
  RETURN_IF_ERROR(CheckReadable("kernel", spec.kernel));
  RETURN_IF_ERROR(CheckReadable("initrd", spec.initrd));
  RETURN_IF_ERROR(CheckReadable("base image", spec.base_image));
  GuestLock guest(this, spec.name);
  RETURN_IF_ERROR(EnsureConnected());
  absl::ReaderMutexLock l(&conn_mu_);
  const std::string& name = spec.name;
  if (spec.controller_port != 0 && relay_forbidden_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "guest ", name, ": libvirt at ", options_.uri,
        " runs qemu with -sandbox spawn=deny, which kills qemu when the guest connects to the "
        "controller; set seccomp_sandbox = 0 in /etc/libvirt/qemu.conf and restart libvirtd "
        "(scripts/libvirt.sh: kfleet_start_libvirtd does both)"));
  }
  absl::StatusOr<DomainHandle> existing = LookupDomain(conn_.get(), options_.domain_prefix + name);
  if (existing.ok()) {
    return absl::AlreadyExistsError(absl::StrCat("guest ", name, " already exists"));
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();

  DomainOptions domain;
  ASSIGN_OR_RETURN(domain.accel, Accel(spec.kernel));
  domain.machine = options_.machine;
  domain.domain_prefix = options_.domain_prefix;
  if (spec.controller_port != 0) {
    domain.relay_command = absl::StrReplaceAll(options_.relay_command,
                                               {{"{port}", absl::StrCat(spec.controller_port)}});
  }
  // A directory without a domain is what a crash between the two left: start afresh.
  RETURN_IF_ERROR(RemoveTree(GuestDir(name)));
  auto fail = [&](absl::Status s) {
    absl::Status cleanup = RemoveTree(GuestDir(name));
    if (!cleanup.ok()) LogWarning(cleanup.ToString());
    return s;
  };
  absl::Status files = MakeGuestFiles(spec, &domain);
  if (!files.ok()) {
    return fail(absl::Status(files.code(), absl::StrCat("guest ", name, ": ", files.message())));
  }
  absl::StatusOr<std::string> xml = DomainXml(spec, domain);
  if (!xml.ok()) return fail(xml.status());

  DomainHandle dom(virDomainDefineXML(conn_.get(), xml->c_str()));
  if (dom == nullptr) return fail(LibvirtError(name, "define"));
  if (virDomainCreate(dom.get()) != 0) {
    absl::Status s = LibvirtError(name, "start");
    virDomainUndefine(dom.get());
    return fail(s);
  }
  LogInfo(absl::StrCat("guest ", name, " started (", domain.accel, ")"));
  return GuestInfo{name, true, domain.accel, domain.console_path};
}

absl::Status LibvirtProvider::Destroy(const std::string& name) {
  RETURN_IF_ERROR(CheckGuestName(name));
  GuestLock guest(this, name);
  RETURN_IF_ERROR(EnsureConnected());
  absl::ReaderMutexLock l(&conn_mu_);
  absl::StatusOr<DomainHandle> dom = LookupGuest(name);
  if (dom.ok()) {
    RETURN_IF_ERROR(PowerOff(dom->get(), name));
    constexpr unsigned kFlags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM |
                                VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
    if (virDomainUndefineFlags(dom->get(), kFlags) != 0) return LibvirtError(name, "undefine");
  } else if (!absl::IsNotFound(dom.status())) {
    return dom.status();
  }
  return RemoveTree(GuestDir(name));
}

absl::Status LibvirtProvider::PowerCycle(const std::string& name) {
  RETURN_IF_ERROR(CheckGuestName(name));
  GuestLock guest(this, name);
  RETURN_IF_ERROR(EnsureConnected());
  absl::ReaderMutexLock l(&conn_mu_);
  ASSIGN_OR_RETURN(DomainHandle dom, LookupGuest(name));
  RETURN_IF_ERROR(PowerOff(dom.get(), name));
  if (virDomainCreate(dom.get()) != 0) return LibvirtError(name, "start");
  return absl::OkStatus();
}

absl::Status LibvirtProvider::BootOnce(const std::string& name, const std::string& extra_cmdline,
                                       const std::string& kernel, const std::string& initrd) {
  RETURN_IF_ERROR(CheckGuestName(name));
  RETURN_IF_ERROR(CheckReadable("kernel", kernel));
  RETURN_IF_ERROR(CheckReadable("initrd", initrd));
  GuestLock guest(this, name);
  RETURN_IF_ERROR(EnsureConnected());
  absl::ReaderMutexLock l(&conn_mu_);
  ASSIGN_OR_RETURN(DomainHandle dom, LookupGuest(name));
  LibvirtString current(
      virDomainGetXMLDesc(dom.get(), VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE));
  if (current == nullptr) return LibvirtError(name, "read the definition");
  std::string original = current.get();
  size_t end = original.find("</cmdline>");
  if (end == std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat("guest ", name,
                     " boots from disk: a one-time kernel command line needs a direct-boot "
                     "guest (image tiny)"));
  }
  std::string once = original;
  if (!extra_cmdline.empty()) once.insert(end, absl::StrCat(" ", XmlEscape(extra_cmdline)));
  if (!kernel.empty() || !initrd.empty()) {
    // Copies beside the usual ones, for the same reasons as SetKernel's.
    std::string kernel_path = kernel, initrd_path = initrd;
    if (local_ && !kernel.empty()) {
      kernel_path = absl::StrCat(GuestDir(name), "/", kOnceKernelFile);
      RETURN_IF_ERROR(CopyFileAtomic(kernel, kernel_path));
    }
    if (local_ && !initrd.empty()) {
      initrd_path = absl::StrCat(GuestDir(name), "/", kOnceInitrdFile);
      RETURN_IF_ERROR(CopyFileAtomic(initrd, initrd_path));
    }
    absl::StatusOr<std::string> xml = ReplaceBootFiles(once, kernel_path, initrd_path);
    if (!xml.ok()) {
      return absl::Status(xml.status().code(),
                          absl::StrCat("guest ", name, ": boot once: ", xml.status().message()));
    }
    once = *std::move(xml);
  }
  // Start from the one-time definition, then put the usual one back: the running guest keeps
  // what it started with (its own reboots too), the next power-cycle boots the usual one.
  DomainHandle redefined(virDomainDefineXML(conn_.get(), once.c_str()));
  if (redefined == nullptr) return LibvirtError(name, "define the one-time boot");
  absl::Status started = PowerOff(dom.get(), name);
  if (started.ok() && virDomainCreate(dom.get()) != 0) started = LibvirtError(name, "start");
  DomainHandle restored(virDomainDefineXML(conn_.get(), original.c_str()));
  if (restored == nullptr) return LibvirtError(name, "restore the usual definition");
  return started;
}

absl::Status LibvirtProvider::SetKernel(const std::string& name, const std::string& kernel,
                                        const std::string& initrd) {
  RETURN_IF_ERROR(CheckGuestName(name));
  if (kernel.empty() && initrd.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(CheckReadable("kernel", kernel));
  RETURN_IF_ERROR(CheckReadable("initrd", initrd));
  GuestLock guest(this, name);
  RETURN_IF_ERROR(EnsureConnected());
  absl::ReaderMutexLock l(&conn_mu_);
  ASSIGN_OR_RETURN(DomainHandle dom, LookupGuest(name));
  // Boot copies in the guest's directory: qemu reaches them, libvirt relabels them instead of the
  // caller's files (a kernel build tree), and Destroy removes them. Replacing a copy does not
  // disturb a running guest: qemu loaded its kernel at start.
  std::string kernel_path = kernel, initrd_path = initrd;
  if (local_ && !kernel.empty()) {
    kernel_path = absl::StrCat(GuestDir(name), "/", kBootKernelFile);
    RETURN_IF_ERROR(CopyFileAtomic(kernel, kernel_path));
  }
  if (local_ && !initrd.empty()) {
    initrd_path = absl::StrCat(GuestDir(name), "/", kBootInitrdFile);
    RETURN_IF_ERROR(CopyFileAtomic(initrd, initrd_path));
  }
  LibvirtString current(
      virDomainGetXMLDesc(dom.get(), VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE));
  if (current == nullptr) return LibvirtError(name, "read the definition");
  absl::StatusOr<std::string> xml = ReplaceBootFiles(current.get(), kernel_path, initrd_path);
  if (!xml.ok()) {
    return absl::Status(xml.status().code(),
                        absl::StrCat("guest ", name, ": set kernel: ", xml.status().message()));
  }
  DomainHandle redefined(virDomainDefineXML(conn_.get(), xml->c_str()));
  if (redefined == nullptr) return LibvirtError(name, "set kernel");
  return absl::OkStatus();
}

absl::StatusOr<std::string> LibvirtProvider::ConsoleLog(const std::string& name, size_t max_bytes) {
  RETURN_IF_ERROR(CheckGuestName(name));
  std::string path = absl::StrCat(GuestDir(name), "/", kConsoleFile);
  {
    RETURN_IF_ERROR(EnsureConnected());
    absl::ReaderMutexLock l(&conn_mu_);
    ASSIGN_OR_RETURN(DomainHandle dom, LookupGuest(name));
    std::optional<GuestMetadata> meta = ReadMetadata(dom.get());
    if (meta.has_value() && !meta->console_path.empty()) path = meta->console_path;
  }
  absl::StatusOr<std::string> tail = ReadTail(path, max_bytes);
  if (!tail.ok()) {
    return absl::Status(tail.status().code(),
                        absl::StrCat("guest ", name, ": console: ", tail.status().message()));
  }
  return tail;
}

absl::StatusOr<std::vector<GuestInfo>> LibvirtProvider::List() {
  RETURN_IF_ERROR(EnsureConnected());
  absl::ReaderMutexLock l(&conn_mu_);
  virDomainPtr* domains = nullptr;
  int n = virConnectListAllDomains(conn_.get(), &domains, 0);
  if (n < 0) return LibvirtError("", "list domains");
  std::vector<DomainHandle> owned;
  for (int i = 0; i < n; ++i) owned.emplace_back(domains[i]);
  std::free(domains);

  std::vector<GuestInfo> guests;
  for (const DomainHandle& dom : owned) {
    std::optional<GuestMetadata> meta = ReadMetadata(dom.get());
    if (!meta.has_value()) continue;
    const char* name = virDomainGetName(dom.get());
    if (name == nullptr) continue;
    guests.push_back(
        GuestInfo{name, virDomainIsActive(dom.get()) == 1, meta->accel, meta->console_path});
  }
  return guests;
}

}  // namespace kfleet::controller::provision

#include "controller/provision/domain_xml.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::controller::provision {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

GuestSpec DirectBootSpec() {
  GuestSpec spec;
  spec.name = "local-1";
  spec.pool = "local";
  spec.cpus = 2;
  spec.memory_mib = 768;
  spec.kernel = "/var/lib/kfleet/images/tiny/vmlinuz";
  spec.initrd = "/var/lib/kfleet/images/tiny/initrd.img";
  spec.cmdline = "quiet";
  spec.settings = {{"controller", "10.0.2.100:7000"}, {"name", "local-1"}};
  spec.controller_port = 7000;
  return spec;
}

DomainOptions OptionsFor(const GuestSpec& spec) {
  DomainOptions o;
  o.accel = "tcg";
  o.console_path = "/var/lib/kfleet/guests/" + spec.name + "/console.log";
  if (!spec.base_image.empty()) o.overlay_path = "/var/lib/kfleet/guests/x/overlay.qcow2";
  for (const DiskSpec& d : spec.disks) {
    o.disk_paths.push_back("/var/lib/kfleet/guests/x/disk-" + d.name + ".img");
  }
  if (spec.controller_port != 0) {
    o.relay_command = absl::StrCat("socat - TCP:127.0.0.1:", spec.controller_port);
  }
  return o;
}

// Every tag closed in order, attributes quoted, no bare '&' or '<' in text: what libvirt's parser
// would reject first.
::testing::AssertionResult WellFormed(const std::string& xml) {
  std::vector<std::string> open;
  for (size_t i = 0; i < xml.size(); ++i) {
    if (xml[i] == '&') {
      size_t semi = xml.find(';', i);
      std::string entity = xml.substr(i, semi == std::string::npos ? 1 : semi - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" &&
          entity != "&apos;") {
        return ::testing::AssertionFailure() << "bare & at " << i;
      }
      continue;
    }
    if (xml[i] != '<') continue;
    size_t end = i + 1;
    char quote = 0;
    for (; end < xml.size(); ++end) {
      if (quote != 0) {
        if (xml[end] == quote) quote = 0;
        if (xml[end] == '<') return ::testing::AssertionFailure() << "'<' in attribute at " << end;
      } else if (xml[end] == '\'' || xml[end] == '"') {
        quote = xml[end];
      } else if (xml[end] == '>') {
        break;
      }
    }
    if (end == xml.size()) return ::testing::AssertionFailure() << "unterminated tag at " << i;
    std::string tag = xml.substr(i + 1, end - i - 1);
    std::string name = tag.substr(0, tag.find_first_of(" \n/"));
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) {
        return ::testing::AssertionFailure() << "mismatched </" << tag.substr(1) << ">";
      }
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(name);
    }
    i = end;
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> not closed";
  return ::testing::AssertionSuccess();
}

// Validates that a direct-boot guest gets its kernel, initrd and a command line with the serial
// console and the kfleet settings.
TEST(DomainXmlTest, DirectKernelBoot) {
  GuestSpec spec = DirectBootSpec();
  absl::StatusOr<std::string> xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_TRUE(WellFormed(*xml));
  EXPECT_THAT(*xml, HasSubstr("<domain type='qemu'"));
  EXPECT_THAT(*xml, HasSubstr("<name>local-1</name>"));
  EXPECT_THAT(*xml, HasSubstr("<kernel>/var/lib/kfleet/images/tiny/vmlinuz</kernel>"));
  EXPECT_THAT(*xml, HasSubstr("<initrd>/var/lib/kfleet/images/tiny/initrd.img</initrd>"));
  EXPECT_THAT(*xml, HasSubstr("<cmdline>quiet console=ttyS0 kfleet.controller=10.0.2.100:7000 "
                              "kfleet.name=local-1</cmdline>"));
  EXPECT_THAT(*xml, Not(HasSubstr("<boot dev='hd'/>")));
  EXPECT_THAT(*xml, HasSubstr("<memory unit='MiB'>768</memory>"));
  EXPECT_THAT(*xml, HasSubstr(">2</vcpu>"));
  EXPECT_THAT(*xml, HasSubstr("<on_reboot>restart</on_reboot>"));
  EXPECT_THAT(*xml, HasSubstr("<on_poweroff>destroy</on_poweroff>"));
  EXPECT_THAT(*xml, HasSubstr("<on_crash>destroy</on_crash>"));
  EXPECT_THAT(*xml, Not(HasSubstr("<uuid>")));
  EXPECT_THAT(*xml, Not(HasSubstr("host-passthrough")));
}

// Validates that the domain is named with the prefix while the guest keeps its own name.
TEST(DomainXmlTest, DomainPrefix) {
  GuestSpec spec = DirectBootSpec();
  DomainOptions options = OptionsFor(spec);
  options.domain_prefix = "ci7-";
  absl::StatusOr<std::string> xml = DomainXml(spec, options);
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, HasSubstr("<name>ci7-local-1</name>"));
  EXPECT_THAT(*xml, HasSubstr("kfleet.name=local-1</cmdline>"));
}

// Validates the command line without a user part starts with the console.
TEST(DomainXmlTest, CmdlineWithoutUserPart) {
  GuestSpec spec = DirectBootSpec();
  spec.cmdline = "  ";
  spec.settings = {{"b", "2"}, {"a", "1"}, {"kfleet.name", "g1"}};
  EXPECT_EQ(KernelCmdline(spec), "console=ttyS0 kfleet.a=1 kfleet.b=2 kfleet.name=g1");
}

// Validates that a guest with a base image boots from its overlay as vda.
TEST(DomainXmlTest, DiskBootUsesOverlay) {
  GuestSpec spec = DirectBootSpec();
  spec.kernel.clear();
  spec.initrd.clear();
  spec.base_image = "/var/lib/kfleet/images/debian.qcow2";
  absl::StatusOr<std::string> xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_TRUE(WellFormed(*xml));
  EXPECT_THAT(*xml, HasSubstr("<boot dev='hd'/>"));
  EXPECT_THAT(*xml, Not(HasSubstr("<kernel>")));
  EXPECT_THAT(*xml, Not(HasSubstr("<cmdline>")));
  EXPECT_THAT(*xml, HasSubstr("type='qcow2'"));
  EXPECT_THAT(*xml, HasSubstr("<source file='/var/lib/kfleet/guests/x/overlay.qcow2'/>\n"
                              "      <target dev='vda' bus='virtio'/>"));
  // The image's agent finds its settings in fw_cfg.
  EXPECT_THAT(*xml, HasSubstr("<entry name='opt/kfleet/settings'>kfleet.controller=10.0.2.100:"
                              "7000\nkfleet.name=local-1\n</entry>"));
}

constexpr char kCaPem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfzCCASWgAwIBAgIUQ2E+/x==\n"
    "-----END CERTIFICATE-----\n";

// Validates that a direct-boot guest gets its token and CA as fw_cfg entries beside the settings,
// in one <sysinfo type='fwcfg'>, and nowhere on its kernel command line.
TEST(DomainXmlTest, FwCfgEntriesDirectBoot) {
  GuestSpec spec = DirectBootSpec();
  spec.fw_cfg[kTokenFwCfgName] = "kft_guest.s3cret";
  spec.fw_cfg[kCaCertFwCfgName] = kCaPem;
  absl::StatusOr<std::string> xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_TRUE(WellFormed(*xml));
  EXPECT_THAT(*xml, HasSubstr("<sysinfo type='fwcfg'>\n"
                              "    <entry name='opt/kfleet/settings'>kfleet.controller="));
  EXPECT_THAT(*xml, HasSubstr("    <entry name='opt/kfleet/ca.pem'>-----BEGIN CERTIFICATE-----\n"
                              "MIIBfzCCASWgAwIBAgIUQ2E+/x==\n-----END CERTIFICATE-----\n</entry>\n"
                              "    <entry name='opt/kfleet/token'>kft_guest.s3cret</entry>\n"
                              "  </sysinfo>\n"));
  size_t first = xml->find("<sysinfo");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(xml->find("<sysinfo", first + 1), std::string::npos) << "one <sysinfo> only";
  size_t cmdline = xml->find("<cmdline>");
  ASSERT_NE(cmdline, std::string::npos);
  std::string line = xml->substr(cmdline, xml->find("</cmdline>") - cmdline);
  EXPECT_THAT(line, Not(HasSubstr("s3cret")));
  EXPECT_THAT(line, Not(HasSubstr("CERTIFICATE")));
  EXPECT_THAT(KernelCmdline(spec), Not(HasSubstr("s3cret")));
}

// Validates that a disk-booted guest gets the entries too, merged with its settings.
TEST(DomainXmlTest, FwCfgEntriesDiskBoot) {
  GuestSpec spec = DirectBootSpec();
  spec.kernel.clear();
  spec.initrd.clear();
  spec.base_image = "/var/lib/kfleet/images/debian.qcow2";
  spec.fw_cfg[kTokenFwCfgName] = "kft_disk";
  spec.fw_cfg[kCaCertFwCfgName] = kCaPem;
  absl::StatusOr<std::string> xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_TRUE(WellFormed(*xml));
  EXPECT_THAT(*xml, HasSubstr("kfleet.name=local-1\n</entry>\n"
                              "    <entry name='opt/kfleet/ca.pem'>-----BEGIN CERTIFICATE-----"));
  EXPECT_THAT(*xml, HasSubstr("<entry name='opt/kfleet/token'>kft_disk</entry>"));
  size_t first = xml->find("<sysinfo");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(xml->find("<sysinfo", first + 1), std::string::npos) << "one <sysinfo> only";
}

// Validates that a guest without settings still gets its fw_cfg entries.
TEST(DomainXmlTest, FwCfgEntriesWithoutSettings) {
  GuestSpec spec = DirectBootSpec();
  spec.settings.clear();
  spec.fw_cfg[kTokenFwCfgName] = "kft_only";
  absl::StatusOr<std::string> xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_TRUE(WellFormed(*xml));
  EXPECT_THAT(*xml, HasSubstr("  <sysinfo type='fwcfg'>\n"
                              "    <entry name='opt/kfleet/token'>kft_only</entry>\n"
                              "  </sysinfo>\n"));
  EXPECT_THAT(*xml, Not(HasSubstr("opt/kfleet/settings")));

  spec.fw_cfg.clear();
  xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, Not(HasSubstr("<sysinfo")));
}

// Validates that XML metacharacters in fw_cfg content are escaped.
TEST(DomainXmlTest, FwCfgContentEscaped) {
  GuestSpec spec = DirectBootSpec();
  spec.fw_cfg["opt/kfleet/token"] = "a<b>&c'd\"e";
  absl::StatusOr<std::string> xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_TRUE(WellFormed(*xml));
  EXPECT_THAT(*xml, HasSubstr("<entry name='opt/kfleet/token'>a&lt;b&gt;&amp;c&apos;d&quot;e"
                              "</entry>"));
  EXPECT_THAT(*xml, Not(HasSubstr("a<b>")));
}

// Validates the fw_cfg checks, and that no message repeats an entry's (secret) content.
TEST(DomainXmlTest, RejectsBadFwCfg) {
  const std::string big((64 << 10) + 1, 'x');
  const struct {
    const char* what;
    std::string name;
    std::string content;
    const char* message;
  } cases[] = {
      {"not under opt/", "etc/kfleet/token", "s3cret", "fw_cfg entry \"etc/kfleet/token\""},
      {"only opt/", "opt/", "s3cret", "fw_cfg entry \"opt/\""},
      {"upper case", "opt/kfleet/Token", "s3cret", "fw_cfg entry \"opt/kfleet/Token\""},
      {"space", "opt/kfleet/my token", "s3cret", "fw_cfg entry"},
      {"quote", "opt/kfleet/'x", "s3cret", "fw_cfg entry"},
      {"dot-dot", "opt/kfleet/../token", "s3cret", "fw_cfg entry"},
      {"empty part", "opt//token", "s3cret", "fw_cfg entry"},
      {"trailing slash", "opt/kfleet/", "s3cret", "fw_cfg entry"},
      {"too long", "opt/" + std::string(52, 'a'), "s3cret", "at most 55 characters"},
      {"settings name", "opt/kfleet/settings", "s3cret", "reserved for the kfleet.* settings"},
      {"empty content", "opt/kfleet/token", "", "\"opt/kfleet/token\" is empty"},
      {"too big", "opt/kfleet/token", big, "65537 bytes: at most 65536"},
      {"NUL", "opt/kfleet/token", std::string("s3c\0ret", 7), "printable ASCII"},
      {"carriage return", "opt/kfleet/token", "s3cret\r\n", "printable ASCII"},
      {"not ASCII", "opt/kfleet/token", "s3cr\xc3\xa9t", "printable ASCII"},
  };
  for (const auto& c : cases) {
    GuestSpec spec = DirectBootSpec();
    spec.fw_cfg[c.name] = c.content;
    absl::Status s = ValidateGuestSpec(spec);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.what;
    EXPECT_THAT(s.message(), Not(HasSubstr("s3c"))) << c.what;
    EXPECT_EQ(DomainXml(spec, OptionsFor(spec)).status().code(), absl::StatusCode::kInvalidArgument)
        << c.what;
  }

  GuestSpec spec = DirectBootSpec();
  for (int i = 0; i < 9; ++i) spec.fw_cfg[absl::StrCat("opt/kfleet/e", i)] = "x";
  EXPECT_THAT(ValidateGuestSpec(spec).message(), HasSubstr("9 fw_cfg entries: at most 8"));
  spec.fw_cfg.erase("opt/kfleet/e8");
  EXPECT_TRUE(ValidateGuestSpec(spec).ok());
  spec.fw_cfg = {{"opt/org.example_x/a-b.1", std::string(64 << 10, 'x')}};
  EXPECT_TRUE(ValidateGuestSpec(spec).ok()) << "the largest, with every name character";
}

// Validates that extra disks are raw virtio disks from vdb on, named by their serial.
TEST(DomainXmlTest, ExtraDisks) {
  GuestSpec spec = DirectBootSpec();
  spec.disks = {{"test", 2048}, {"scratch", 2048}};
  absl::StatusOr<std::string> xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_TRUE(WellFormed(*xml));
  EXPECT_THAT(*xml, HasSubstr("<source file='/var/lib/kfleet/guests/x/disk-test.img'/>\n"
                              "      <target dev='vdb' bus='virtio'/>\n"
                              "      <serial>test</serial>"));
  EXPECT_THAT(*xml, HasSubstr("<source file='/var/lib/kfleet/guests/x/disk-scratch.img'/>\n"
                              "      <target dev='vdc' bus='virtio'/>\n"
                              "      <serial>scratch</serial>"));
  EXPECT_THAT(*xml, HasSubstr("type='raw'"));
  EXPECT_THAT(*xml, Not(HasSubstr("dev='vda'")));
}

// Validates the restricted network: only the controller port, relayed by the command.
TEST(DomainXmlTest, RestrictedNetworkForwardsOnlyControllerPort) {
  GuestSpec spec = DirectBootSpec();
  absl::StatusOr<std::string> xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, HasSubstr("xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"));
  EXPECT_THAT(*xml, HasSubstr("<qemu:arg value='user,id=kf0,restrict=on,guestfwd=tcp:10.0.2.100:"
                              "7000-cmd:socat - TCP:127.0.0.1:7000'/>"));
  EXPECT_THAT(*xml, HasSubstr("<qemu:arg value='virtio-net-pci,netdev=kf0,"));
  EXPECT_THAT(*xml, Not(HasSubstr("<interface")));
}

// Validates that a comma in the relay command survives qemu's option parser.
TEST(DomainXmlTest, RelayCommandCommasAreDoubled) {
  GuestSpec spec = DirectBootSpec();
  DomainOptions o = OptionsFor(spec);
  o.relay_command = "socat - TCP:127.0.0.1:7000,nodelay";
  absl::StatusOr<std::string> xml = DomainXml(spec, o);
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, HasSubstr("-cmd:socat - TCP:127.0.0.1:7000,,nodelay'/>"));
}

// Validates that a guest without a controller port has no network device at all.
TEST(DomainXmlTest, NoPortNoNetwork) {
  GuestSpec spec = DirectBootSpec();
  spec.controller_port = 0;
  absl::StatusOr<std::string> xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, Not(HasSubstr("qemu:commandline")));
  EXPECT_THAT(*xml, Not(HasSubstr("-netdev")));
}

// Validates the KVM domain type and CPU.
TEST(DomainXmlTest, KvmDomain) {
  GuestSpec spec = DirectBootSpec();
  DomainOptions o = OptionsFor(spec);
  o.accel = "kvm";
  absl::StatusOr<std::string> xml = DomainXml(spec, o);
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, HasSubstr("<domain type='kvm'"));
  EXPECT_THAT(*xml, HasSubstr("<cpu mode='host-passthrough'/>"));
  o.accel = "hvf";
  EXPECT_EQ(DomainXml(spec, o).status().code(), absl::StatusCode::kInvalidArgument);
}

// Validates the serial console appended to a file, and the pc machine's network slot.
TEST(DomainXmlTest, ConsoleAndMachine) {
  GuestSpec spec = DirectBootSpec();
  DomainOptions o = OptionsFor(spec);
  o.machine = "pc";
  absl::StatusOr<std::string> xml = DomainXml(spec, o);
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, HasSubstr("<serial type='file'>\n      <source path='/var/lib/kfleet/guests/"
                              "local-1/console.log' append='on'/>"));
  EXPECT_THAT(*xml, HasSubstr("<console type='file'>"));
  EXPECT_THAT(*xml, HasSubstr("machine='pc'"));
  EXPECT_THAT(*xml, HasSubstr("bus=pci.0,addr=0x1f"));
  o.machine = "virt";
  EXPECT_EQ(DomainXml(spec, o).status().code(), absl::StatusCode::kInvalidArgument);
}

// Validates that paths and command lines with XML metacharacters are escaped.
TEST(DomainXmlTest, EscapesValues) {
  GuestSpec spec = DirectBootSpec();
  spec.kernel = "/boot/a&b/vmlinuz";
  spec.cmdline = "x=<1> y='2'";
  DomainOptions o = OptionsFor(spec);
  o.console_path = "/tmp/it's & <here>/console.log";
  absl::StatusOr<std::string> xml = DomainXml(spec, o);
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_TRUE(WellFormed(*xml));
  EXPECT_THAT(*xml, HasSubstr("<kernel>/boot/a&amp;b/vmlinuz</kernel>"));
  EXPECT_THAT(*xml, HasSubstr("<cmdline>x=&lt;1&gt; y=&apos;2&apos; console=ttyS0"));
  EXPECT_THAT(*xml, HasSubstr("path='/tmp/it&apos;s &amp; &lt;here&gt;/console.log'"));
}

// Validates the metadata that marks kfleet guests, as written and as libvirt returns it.
TEST(DomainXmlTest, Metadata) {
  GuestSpec spec = DirectBootSpec();
  absl::StatusOr<std::string> xml = DomainXml(spec, OptionsFor(spec));
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, HasSubstr(absl::StrCat("<kfleet:guest xmlns:kfleet='", kMetadataNamespace,
                                           "' pool='local' accel='tcg'")));
  // virDomainGetMetadata drops the namespace of the element it returns.
  std::optional<GuestMetadata> meta = ParseGuestMetadata(
      "<guest pool=\"local\" accel=\"kvm\" console=\"/g/a&amp;b&quot;/console.log\"/>");
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->pool, "local");
  EXPECT_EQ(meta->accel, "kvm");
  EXPECT_EQ(meta->console_path, "/g/a&b\"/console.log");
  meta = ParseGuestMetadata(absl::StrCat("<k:guest xmlns:k='", kMetadataNamespace, "' pool='p'/>"));
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->pool, "p");
  EXPECT_FALSE(ParseGuestMetadata("<other pool='p'/>").has_value());
  EXPECT_FALSE(ParseGuestMetadata("").has_value());
}

// Validates the spec checks, each naming what is wrong.
TEST(DomainXmlTest, RejectsBadSpecs) {
  struct Case {
    const char* what;
    void (*mutate)(GuestSpec*);
    const char* message;
  };
  const Case cases[] = {
      {"empty name", [](GuestSpec* s) { s->name = ""; }, "guest name"},
      {"path in name", [](GuestSpec* s) { s->name = "../etc"; }, "guest name"},
      {"dot name", [](GuestSpec* s) { s->name = ".hidden"; }, "guest name"},
      {"space in name", [](GuestSpec* s) { s->name = "a b"; }, "guest name"},
      {"no cpus", [](GuestSpec* s) { s->cpus = 0; }, "cpus"},
      {"tiny memory", [](GuestSpec* s) { s->memory_mib = 8; }, "memory"},
      {"nothing to boot",
       [](GuestSpec* s) {
         s->kernel.clear();
         s->initrd.clear();
       },
       "needs a kernel or a base image"},
      {"initrd alone",
       [](GuestSpec* s) {
         s->kernel.clear();
         s->base_image = "/images/debian.qcow2";
       },
       "initrd needs a kernel"},
      {"relative kernel", [](GuestSpec* s) { s->kernel = "vmlinuz"; }, "absolute path"},
      {"space in setting", [](GuestSpec* s) { s->settings["labels"] = "a=1 b=2"; },
       "setting labels"},
      {"quote in setting", [](GuestSpec* s) { s->settings["x"] = "\"y"; }, "setting x"},
      {"bad setting key", [](GuestSpec* s) { s->settings["a b"] = "1"; }, "setting \"a b\""},
      {"duplicate disk",
       [](GuestSpec* s) {
         s->disks = {{"test", 1}, {"test", 1}};
       },
       "appears twice"},
      {"disk name too long",
       [](GuestSpec* s) {
         s->disks = {{"a-very-long-disk-name-x", 1}};
       },
       "disk name"},
      {"empty disk",
       [](GuestSpec* s) {
         s->disks = {{"test", 0}};
       },
       "size 0"},
      {"newline in cmdline", [](GuestSpec* s) { s->cmdline = "a\nb"; }, "control characters"},
      {"bad port", [](GuestSpec* s) { s->controller_port = 70000; }, "controller port"},
  };
  for (const Case& c : cases) {
    GuestSpec spec = DirectBootSpec();
    c.mutate(&spec);
    absl::Status s = ValidateGuestSpec(spec);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.what;
  }
  EXPECT_TRUE(ValidateGuestSpec(DirectBootSpec()).ok());
}

// Validates that options must fit the spec (a path per disk, a relay iff a port).
TEST(DomainXmlTest, RejectsMismatchedOptions) {
  GuestSpec spec = DirectBootSpec();
  spec.disks = {{"test", 1}};
  DomainOptions o = OptionsFor(spec);
  o.disk_paths.clear();
  EXPECT_EQ(DomainXml(spec, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = OptionsFor(spec);
  o.relay_command.clear();
  EXPECT_EQ(DomainXml(spec, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = OptionsFor(spec);
  o.console_path.clear();
  EXPECT_EQ(DomainXml(spec, o).status().code(), absl::StatusCode::kInvalidArgument);
}

constexpr char kLibvirtXml[] =
    "<domain type='qemu'>\n"
    "  <name>g</name>\n"
    "  <os>\n"
    "    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n"
    "    <kernel>/old/vmlinuz</kernel>\n"
    "    <initrd>/old/initrd.img</initrd>\n"
    "    <cmdline>console=ttyS0</cmdline>\n"
    "  </os>\n"
    "</domain>\n";

// Validates SetKernel's edit: new paths in, empty arguments keep the old ones.
TEST(DomainXmlTest, ReplaceBootFiles) {
  absl::StatusOr<std::string> xml = ReplaceBootFiles(kLibvirtXml, "/new/vm&linuz", "");
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, HasSubstr("<kernel>/new/vm&amp;linuz</kernel>"));
  EXPECT_THAT(*xml, HasSubstr("<initrd>/old/initrd.img</initrd>"));
  EXPECT_THAT(*xml, HasSubstr("<cmdline>console=ttyS0</cmdline>"));

  xml = ReplaceBootFiles(kLibvirtXml, "", "/new/initrd.img");
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml, HasSubstr("<kernel>/old/vmlinuz</kernel>"));
  EXPECT_THAT(*xml, HasSubstr("<initrd>/new/initrd.img</initrd>"));
}

// Validates that an initrd is added to a definition that had none.
TEST(DomainXmlTest, ReplaceBootFilesAddsInitrd) {
  std::string no_initrd = kLibvirtXml;
  no_initrd.erase(no_initrd.find("    <initrd>"),
                  std::string("    <initrd>/old/initrd.img</initrd>\n").size());
  absl::StatusOr<std::string> xml = ReplaceBootFiles(no_initrd, "", "/new/initrd.img");
  ASSERT_TRUE(xml.ok()) << xml.status();
  EXPECT_THAT(*xml,
              HasSubstr("<kernel>/old/vmlinuz</kernel>\n    <initrd>/new/initrd.img</initrd>"));
  EXPECT_TRUE(WellFormed(*xml));
}

// Validates that disk-booting guests and relative paths are refused.
TEST(DomainXmlTest, ReplaceBootFilesRefuses) {
  EXPECT_EQ(
      ReplaceBootFiles("<domain><os><boot dev='hd'/></os></domain>", "/k", "").status().code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReplaceBootFiles(kLibvirtXml, "vmlinuz", "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kfleet::controller::provision

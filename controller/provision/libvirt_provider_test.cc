// Real guests under libvirt at qemu:///system (label `vm`): needs root, qemu, libvirt and a
// network for the first run (the test kernel is downloaded once into /var/cache/kfleet/). Starts
// libvirtd through scripts/libvirt.sh if it is not running.
#include "controller/provision/libvirt_provider.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/ids.h"
#include "controller/provision/accel.h"
#include "controller/provision/host_command.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kfleet::controller::provision {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kBootTimeout = absl::Seconds(90);

std::string Shell(const std::string& script, absl::Duration timeout = absl::Minutes(5)) {
  absl::StatusOr<HostCommandResult> r = RunHostCommand({"bash", "-c", script}, timeout);
  if (!r.ok()) return absl::StrCat("ERROR: ", r.status().ToString());
  if (r->exit_code != 0) return absl::StrCat("ERROR: exit ", r->exit_code, ": ", r->output);
  return r->output;
}

size_t Count(absl::string_view haystack, absl::string_view needle) {
  size_t n = 0;
  for (size_t pos = 0; (pos = haystack.find(needle, pos)) != absl::string_view::npos;
       pos += needle.size()) {
    ++n;
  }
  return n;
}

// Answers every connection on 127.0.0.1 with "RELAY-OK\n" and closes it: the stand-in for the
// controller that guests reach through their relay.
class ReplyServer {
 public:
  ReplyServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::perror("ReplyServer");
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;  // shutdown() below
        ++connections_;
        static constexpr char kReply[] = "RELAY-OK\n";
        (void)!::write(c, kReply, sizeof kReply - 1);
        ::close(c);
      }
    });
  }
  ~ReplyServer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int connections() const { return connections_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

class LibvirtProviderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_ = "needs root (qemu:///system)";
      return;
    }
    std::string out = Shell(absl::StrCat("source ", KFLEET_SOURCE_DIR,
                                         "/scripts/libvirt.sh && kfleet_start_libvirtd >&2 && "
                                         "kfleet_test_kernel"));
    if (absl::StartsWith(out, "ERROR")) {
      setup_error_ = out;
      return;
    }
    // The last line is the directory (the rest is progress).
    absl::string_view dir = absl::StripTrailingAsciiWhitespace(out);
    dir = dir.substr(dir.rfind('\n') + 1);
    kernel_dir_ = std::string(dir);
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    char tmpl[] = "/var/lib/kfleet/vmtest-XXXXXX";
    ASSERT_TRUE(MakeDirs("/var/lib/kfleet").ok());
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    work_dir_ = tmpl;
    LibvirtOptions options;
    options.work_dir = work_dir_;
    absl::StatusOr<std::unique_ptr<LibvirtProvider>> p = LibvirtProvider::Open(options);
    ASSERT_TRUE(p.ok()) << p.status();
    provider_ = *std::move(p);
  }

  void TearDown() override {
    for (const std::string& name : created_) {
      if (provider_ != nullptr) (void)provider_->Destroy(name);
      // Even if the provider failed: no guest may outlive the test.
      if (VirshKnows(name)) {
        Shell("virsh -c qemu:///system destroy " + name + "; virsh -c qemu:///system undefine " +
              name);
      }
    }
    if (!work_dir_.empty()) std::filesystem::remove_all(work_dir_);
  }

  GuestSpec Spec(int port) {
    GuestSpec spec;
    spec.name = NewId("kfleet-vmtest-").substr(0, 30);
    spec.pool = "vmtest";
    spec.memory_mib = 256;
    spec.kernel = kernel_dir_ + "/vmlinuz";
    spec.initrd = kernel_dir_ + "/initrd.img";
    spec.cmdline = "quiet";
    spec.settings = {{"name", spec.name}, {"probe_port", absl::StrCat(port)}};
    spec.disks = {{"test", 64}, {"scratch", 32}};
    spec.controller_port = port;
    created_.push_back(spec.name);
    return spec;
  }

  // Waits until the console holds `marker` `times` times; returns the whole console.
  std::string WaitForConsole(const std::string& name, absl::string_view marker, size_t times) {
    absl::Time deadline = absl::Now() + kBootTimeout;
    std::string console;
    while (absl::Now() < deadline) {
      absl::StatusOr<std::string> log = provider_->ConsoleLog(name, 1 << 20);
      if (log.ok()) console = *log;
      if (Count(console, marker) >= times) return console;
      absl::SleepFor(absl::Milliseconds(200));
    }
    ADD_FAILURE() << "no " << times << "x " << marker << " on the console of " << name << " within "
                  << kBootTimeout << "; console:\n"
                  << console;
    return console;
  }

  static bool VirshKnows(const std::string& name) {
    return absl::StrContains(Shell("virsh -c qemu:///system list --all --name"), name);
  }

  static inline std::string skip_;
  static inline std::string setup_error_;
  static inline std::string kernel_dir_;
  std::string work_dir_;
  std::unique_ptr<LibvirtProvider> provider_;
  std::vector<std::string> created_;
};

// Validates a guest's whole life: it boots to its init under TCG/KVM with its disks, settings
// and a network that reaches the controller port (twice, so reconnects work) and nothing else;
// it is listed; a new initrd boots after SetKernel + PowerCycle with the console kept; Destroy
// leaves no domain and no file.
TEST_F(LibvirtProviderTest, GuestLifecycle) {
  ReplyServer server;
  ASSERT_NE(server.port(), 0);
  GuestSpec spec = Spec(server.port());
  const std::string& name = spec.name;

  absl::Time start = absl::Now();
  absl::StatusOr<GuestInfo> info = provider_->Create(spec);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name, name);
  EXPECT_TRUE(info->running);
  EXPECT_TRUE(info->accel == "kvm" || info->accel == "tcg") << info->accel;
  EXPECT_EQ(info->console_path, provider_->GuestDir(name) + "/console.log");
  EXPECT_EQ(provider_->Create(spec).status().code(), absl::StatusCode::kAlreadyExists);

  std::string console = WaitForConsole(name, "KFLEET-PROBE-OK", 1);
  std::printf("[ MEASURE  ] %s: Create to KFLEET-PROBE-OK in %s\n", info->accel.c_str(),
              absl::FormatDuration(absl::Now() - start).c_str());
  console = WaitForConsole(name, "KFLEET-DONE", 1);
  std::printf("[ MEASURE  ] Create to end of the probes in %s\n",
              absl::FormatDuration(absl::Now() - start).c_str());
  EXPECT_THAT(console, HasSubstr(absl::StrCat("kfleet.name=", name)));
  EXPECT_THAT(console, HasSubstr("console=ttyS0"));
  EXPECT_THAT(console, HasSubstr(absl::StrCat("KFLEET-FWCFG:kfleet.name=", name)));
  // 64 MiB = 131072 sectors, 32 MiB = 65536.
  EXPECT_THAT(console, HasSubstr("KFLEET-DISKS: vda:test:131072 vdb:scratch:65536"));
  EXPECT_THAT(console, HasSubstr("KFLEET-RELAY:RELAY-OK RELAY-OK"));
  EXPECT_THAT(console, HasSubstr("KFLEET-BLOCKED:yes"));
  EXPECT_EQ(server.connections(), 2);

  absl::StatusOr<std::vector<GuestInfo>> guests = provider_->List();
  ASSERT_TRUE(guests.ok()) << guests.status();
  bool listed = false;
  for (const GuestInfo& g : *guests) {
    if (g.name != name) continue;
    listed = true;
    EXPECT_TRUE(g.running);
    EXPECT_EQ(g.accel, info->accel);
    EXPECT_EQ(g.console_path, info->console_path);
  }
  EXPECT_TRUE(listed);

  absl::StatusOr<std::string> tail = provider_->ConsoleLog(name, 40);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(tail->size(), 40u);
  EXPECT_TRUE(absl::EndsWith(console, *tail));

  // Variant B: the same initrd with a second cpio appended that adds /etc/kfleet-variant.
  const std::string initrd_b = provider_->GuestDir(name) + "-initrd-b.img";
  ASSERT_EQ(Shell(absl::StrCat(
                "set -e; d=$(mktemp -d); mkdir $d/etc; echo B >$d/etc/kfleet-variant;"
                "cp ",
                spec.initrd, " ", initrd_b, "; chmod 644 ", initrd_b,
                // Archives in an initrd start 4-byte aligned.
                "; truncate -s %512 ", initrd_b,
                "; (cd $d && find etc | cpio -o -H newc --quiet) >>", initrd_b, "; rm -rf $d")),
            "");
  ASSERT_TRUE(provider_->SetKernel(name, "", initrd_b).ok());
  // The guest boots its own copy: libvirt relabels that, not the caller's file.
  EXPECT_THAT(Shell("virsh -c qemu:///system dumpxml --inactive " + name),
              HasSubstr(provider_->GuestDir(name) + "/boot-initrd.img"));
  start = absl::Now();
  ASSERT_TRUE(provider_->PowerCycle(name).ok());
  console = WaitForConsole(name, "KFLEET-PROBE-OK", 2);
  std::printf("[ MEASURE  ] PowerCycle to KFLEET-PROBE-OK in %s\n",
              absl::FormatDuration(absl::Now() - start).c_str());
  console = WaitForConsole(name, "KFLEET-VARIANT:B", 1);
  EXPECT_EQ(Count(console, "KFLEET-VARIANT:"), 2u) << "the first boot's output is kept";
  EXPECT_EQ(Count(console, "KFLEET-VARIANT:B"), 1u);
  struct stat st;
  ASSERT_EQ(::stat(initrd_b.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << initrd_b << " was chowned";

  ASSERT_TRUE(provider_->Destroy(name).ok());
  EXPECT_FALSE(VirshKnows(name));
  EXPECT_FALSE(std::filesystem::exists(provider_->GuestDir(name)));
  guests = provider_->List();
  ASSERT_TRUE(guests.ok()) << guests.status();
  for (const GuestInfo& g : *guests) EXPECT_NE(g.name, name);
  EXPECT_TRUE(provider_->Destroy(name).ok()) << "destroying a missing guest is OK";
  EXPECT_EQ(provider_->PowerCycle(name).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(provider_->ConsoleLog(name, 10).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove(initrd_b);
  // Nothing of the guest is left in the work dir (only the accelerator cache may be).
  for (const auto& entry : std::filesystem::directory_iterator(work_dir_)) {
    EXPECT_EQ(entry.path().filename(), "accel") << entry.path();
  }
}

// Validates that a guest that cannot start leaves neither a domain nor files behind.
TEST_F(LibvirtProviderTest, FailedStartLeavesNothing) {
  GuestSpec spec = Spec(0);
  spec.settings.erase("probe_port");
  spec.kernel = work_dir_ + "/not-a-kernel";
  ASSERT_TRUE(WriteFileAtomic(spec.kernel, "garbage").ok());
  ::chmod(spec.kernel.c_str(), 0644);
  absl::StatusOr<GuestInfo> info = provider_->Create(spec);
  ASSERT_FALSE(info.ok());
  EXPECT_THAT(info.status().message(), HasSubstr(spec.name));
  EXPECT_FALSE(VirshKnows(spec.name));
  EXPECT_FALSE(std::filesystem::exists(provider_->GuestDir(spec.name)));

  spec.kernel = work_dir_ + "/missing";
  EXPECT_EQ(provider_->Create(spec).status().code(), absl::StatusCode::kNotFound);
}

// Validates that a domain without kfleet metadata is neither listed nor destroyed.
TEST_F(LibvirtProviderTest, LeavesForeignDomainsAlone) {
  const std::string name = NewId("foreign-").substr(0, 20);
  const std::string xml = work_dir_ + "/foreign.xml";
  ASSERT_TRUE(WriteFileAtomic(xml, absl::StrCat("<domain type='qemu'><name>", name,
                                                "</name><memory unit='MiB'>64</memory><os>"
                                                "<type arch='x86_64'>hvm</type></os></domain>"))
                  .ok());
  ASSERT_THAT(Shell("virsh -c qemu:///system define " + xml), Not(HasSubstr("ERROR")));
  absl::Status destroyed = provider_->Destroy(name);
  EXPECT_EQ(destroyed.code(), absl::StatusCode::kFailedPrecondition) << destroyed;
  EXPECT_TRUE(VirshKnows(name));
  EXPECT_EQ(provider_->PowerCycle(name).code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::vector<GuestInfo>> guests = provider_->List();
  ASSERT_TRUE(guests.ok()) << guests.status();
  for (const GuestInfo& g : *guests) EXPECT_NE(g.name, name);
  Shell("virsh -c qemu:///system undefine " + name);
}

// Validates that without a usable /dev/kvm the answer is TCG, at once.
TEST_F(LibvirtProviderTest, DetectAccelWithoutKvmIsQuick) {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    GTEST_SKIP() << "/dev/kvm opens here: the probe decides";
  }
  absl::Time start = absl::Now();
  EXPECT_EQ(DetectAccel(kernel_dir_ + "/vmlinuz", work_dir_), "tcg");
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

}  // namespace
}  // namespace kfleet::controller::provision

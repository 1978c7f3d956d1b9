#include "agent/exec/cgroup.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kfleet::agent {
namespace {

using ::testing::HasSubstr;

// A directory standing in for "/": proc/self/... and sys/fs/cgroup/... as files we write.
class FakeRoot {
 public:
  FakeRoot() {
    char tmpl[] = "/tmp/kfleet-cgroup-test-XXXXXX";
    root_ = ::mkdtemp(tmpl);
  }
  ~FakeRoot() { std::filesystem::remove_all(root_); }

  const std::string& root() const { return root_; }
  std::string Path(const std::string& rel) const { return root_ + "/" + rel; }

  void Write(const std::string& rel, const std::string& content) const {
    std::filesystem::create_directories(std::filesystem::path(Path(rel)).parent_path());
    std::ofstream(Path(rel)) << content;
  }
  std::string Read(const std::string& rel) const {
    std::ifstream in(Path(rel));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool Exists(const std::string& rel) const { return std::filesystem::exists(Path(rel)); }

  CgroupOptions Options() const {
    CgroupOptions options;
    options.root = root_;
    options.mount_cgroup2 = nullptr;
    return options;
  }

 private:
  std::string root_;
};

constexpr char kV2MountInfo[] =
    "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
constexpr char kFilesystems[] = "nodev\tsysfs\nnodev\tcgroup\nnodev\tcgroup2\n\text4\n";

// A guest's init in the root cgroup of a cgroup v2 host.
void MakeV2Root(const FakeRoot& fs) {
  fs.Write("proc/self/mountinfo", kV2MountInfo);
  fs.Write("proc/self/cgroup", "0::/\n");
  fs.Write("proc/filesystems", kFilesystems);
  fs.Write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
  fs.Write("sys/fs/cgroup/cgroup.procs", "1\n42\n");
}

// This machine: v1 hierarchies on a tmpfs, a cgroup2 without memory at unified.
void MakeV1Hybrid(const FakeRoot& fs) {
  fs.Write("proc/self/mountinfo",
           "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
           "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
           "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
           "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
  fs.Write("proc/self/cgroup", "9:name=systemd:/\n4:memory:/process_api/caf0\n0::/\n");
  fs.Write("proc/filesystems", kFilesystems);
  fs.Write("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
  fs.Write("sys/fs/cgroup/memory/process_api/caf0/memory.limit_in_bytes", "9223372036854771712\n");
}

// Validates that an agent in the v2 root cgroup enables +memory in the root and in kfleet, and
// puts commands in /kfleet/<id> with memory.max set.
TEST(CgroupManagerTest, V2RootCgroup) {
  FakeRoot fs;
  MakeV2Root(fs);
  std::unique_ptr<CgroupManager> m = CgroupManager::Detect(fs.Options());
  ASSERT_EQ(m->mode(), CgroupMode::kV2) << m->detail();
  EXPECT_EQ(m->parent_dir(), fs.Path("sys/fs/cgroup/kfleet"));
  EXPECT_EQ(fs.Read("sys/fs/cgroup/cgroup.subtree_control"), "+memory\n");
  EXPECT_EQ(fs.Read("sys/fs/cgroup/kfleet/cgroup.subtree_control"), "+memory\n");
  EXPECT_EQ(fs.Read("sys/fs/cgroup/cgroup.procs"), "1\n42\n");  // the root keeps its processes

  absl::StatusOr<std::unique_ptr<CommandCgroup>> c = m->Create("c-1", 64 << 20);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->path(), "/kfleet/c-1");
  EXPECT_EQ((*c)->dir(), fs.Path("sys/fs/cgroup/kfleet/c-1"));
  EXPECT_EQ(fs.Read("sys/fs/cgroup/kfleet/c-1/memory.max"), "67108864\n");
  // Without swap accounting there is no memory.swap.max to set.
  EXPECT_FALSE(fs.Exists("sys/fs/cgroup/kfleet/c-1/memory.swap.max"));
  EXPECT_EQ(m->CommandIdForCgroupPath("/kfleet/c-1"), "c-1");
}

// Validates that an agent in a delegated service cgroup moves itself into <service>/agent, and
// that commands go to <service>/kfleet/<id>.
TEST(CgroupManagerTest, V2DelegatedServiceMovesAgentIntoLeaf) {
  FakeRoot fs;
  MakeV2Root(fs);
  const std::string svc = "sys/fs/cgroup/system.slice/kfleet-agent.service";
  fs.Write("proc/self/cgroup", "0::/system.slice/kfleet-agent.service\n");
  fs.Write(svc + "/cgroup.controllers", "memory pids\n");
  std::unique_ptr<CgroupManager> m = CgroupManager::Detect(fs.Options());
  ASSERT_EQ(m->mode(), CgroupMode::kV2) << m->detail();
  EXPECT_EQ(fs.Read(svc + "/agent/cgroup.procs"), absl::StrCat(::getpid(), "\n"));
  EXPECT_EQ(fs.Read(svc + "/cgroup.subtree_control"), "+memory\n");
  EXPECT_EQ(fs.Read(svc + "/kfleet/cgroup.subtree_control"), "+memory\n");
  EXPECT_FALSE(fs.Exists("sys/fs/cgroup/cgroup.subtree_control"));  // not ours to change

  absl::StatusOr<std::unique_ptr<CommandCgroup>> c = m->Create("c-2", 0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->path(), "/system.slice/kfleet-agent.service/kfleet/c-2");
  EXPECT_FALSE(fs.Exists(svc + "/kfleet/c-2/memory.max"));  // no limit asked
  EXPECT_EQ(m->CommandIdForCgroupPath("/system.slice/kfleet-agent.service/kfleet/c-2"), "c-2");
}

// Validates that an agent already in <service>/agent (an earlier Detect) is not moved again.
TEST(CgroupManagerTest, V2AgentAlreadyInLeaf) {
  FakeRoot fs;
  MakeV2Root(fs);
  const std::string svc = "sys/fs/cgroup/system.slice/kfleet-agent.service";
  fs.Write("proc/self/cgroup", "0::/system.slice/kfleet-agent.service/agent\n");
  fs.Write(svc + "/cgroup.controllers", "memory\n");
  std::unique_ptr<CgroupManager> m = CgroupManager::Detect(fs.Options());
  ASSERT_EQ(m->mode(), CgroupMode::kV2) << m->detail();
  EXPECT_FALSE(fs.Exists(svc + "/agent/agent"));
  EXPECT_FALSE(fs.Exists(svc + "/agent/cgroup.procs"));
  EXPECT_EQ(m->parent_dir(), fs.Path(svc + "/kfleet"));
}

// Validates that a v2 cgroup without the memory controller is not used and, with nothing else,
// the mode is none with the reason given.
TEST(CgroupManagerTest, V2WithoutMemoryControllerIsNone) {
  FakeRoot fs;
  MakeV2Root(fs);
  fs.Write("sys/fs/cgroup/cgroup.controllers", "cpu pids\n");
  std::unique_ptr<CgroupManager> m = CgroupManager::Detect(fs.Options());
  EXPECT_EQ(m->mode(), CgroupMode::kNone);
  EXPECT_THAT(m->detail(), HasSubstr("memory controller is not available"));
  EXPECT_FALSE(fs.Exists("sys/fs/cgroup/cgroup.subtree_control"));
  absl::StatusOr<std::unique_ptr<CommandCgroup>> c = m->Create("c-1", 0);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m->CommandIdForCgroupPath("/kfleet/c-1"), std::nullopt);
}

// Validates that on a host like this one (v1 memory, a cgroup2 without it) commands go under our
// own v1 memory cgroup, limited in memory (and swap through swappiness).
TEST(CgroupManagerTest, V1UnderOwnMemoryCgroup) {
  FakeRoot fs;
  MakeV1Hybrid(fs);
  std::unique_ptr<CgroupManager> m = CgroupManager::Detect(fs.Options());
  ASSERT_EQ(m->mode(), CgroupMode::kV1) << m->detail();
  const std::string parent = "sys/fs/cgroup/memory/process_api/caf0/kfleet";
  EXPECT_EQ(m->parent_dir(), fs.Path(parent));
  EXPECT_FALSE(fs.Exists("sys/fs/cgroup/unified/cgroup.subtree_control"));

  absl::StatusOr<std::unique_ptr<CommandCgroup>> c = m->Create("c-3", 1 << 30);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->path(), "/process_api/caf0/kfleet/c-3");
  EXPECT_EQ(fs.Read(parent + "/c-3/memory.limit_in_bytes"), "1073741824\n");
  EXPECT_EQ(fs.Read(parent + "/c-3/memory.swappiness"), "0\n");
  EXPECT_EQ(m->CommandIdForCgroupPath("/process_api/caf0/kfleet/c-3"), "c-3");
  EXPECT_EQ(m->CommandIdForCgroupPath("/process_api/caf0/kfleet/c-3/nested"), "c-3");
  EXPECT_EQ(m->CommandIdForCgroupPath("/process_api/caf0/kfleet"), std::nullopt);
  EXPECT_EQ(m->CommandIdForCgroupPath("/process_api/caf0/kfleetx/c-3"), std::nullopt);
  EXPECT_EQ(m->CommandIdForCgroupPath("/process_api/caf0/kfleet/.."), std::nullopt);
  EXPECT_EQ(m->CommandIdForCgroupPath("/"), std::nullopt);
}

// Validates that with nothing at /sys/fs/cgroup and cgroup2 in the kernel (the tiny initramfs),
// Detect mounts cgroup2 there and uses it.
TEST(CgroupManagerTest, MountsCgroup2WhenNothingIsMounted) {
  FakeRoot fs;
  fs.Write("proc/self/mountinfo", "22 1 0:21 / /sys rw - sysfs sysfs rw\n");
  fs.Write("proc/self/cgroup", "");  // no 0:: line before cgroup2 is first mounted
  fs.Write("proc/filesystems", kFilesystems);
  CgroupOptions options = fs.Options();
  std::vector<std::string> mounted;
  options.mount_cgroup2 = [&](const std::string& target) {
    mounted.push_back(target);
    std::ofstream(target + "/cgroup.controllers") << "cpu memory pids\n";
    return absl::OkStatus();
  };
  std::filesystem::create_directories(fs.Path("sys/fs/cgroup"));
  std::unique_ptr<CgroupManager> m = CgroupManager::Detect(options);
  ASSERT_EQ(m->mode(), CgroupMode::kV2) << m->detail();
  EXPECT_THAT(mounted, ::testing::ElementsAre(fs.Path("sys/fs/cgroup")));
  EXPECT_EQ(m->parent_dir(), fs.Path("sys/fs/cgroup/kfleet"));
}

// Validates that nothing is mounted over a /sys/fs/cgroup that init set up, nor when the kernel
// lacks cgroup2, and that the mode is then none.
TEST(CgroupManagerTest, DoesNotMountOverAnExistingSetup) {
  for (bool tmpfs_there : {true, false}) {
    FakeRoot fs;
    fs.Write("proc/self/mountinfo",
             tmpfs_there ? "30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" : "");
    fs.Write("proc/self/cgroup", "");
    fs.Write("proc/filesystems", tmpfs_there ? kFilesystems : "nodev\tsysfs\n");
    CgroupOptions options = fs.Options();
    int mounts = 0;
    options.mount_cgroup2 = [&](const std::string&) {
      ++mounts;
      return absl::OkStatus();
    };
    std::unique_ptr<CgroupManager> m = CgroupManager::Detect(options);
    EXPECT_EQ(m->mode(), CgroupMode::kNone);
    EXPECT_EQ(mounts, 0);
    EXPECT_THAT(m->detail(), HasSubstr("no memory cgroups"));
  }
}

// Validates that ids that are not safe directory names and negative limits are refused.
TEST(CgroupManagerTest, CreateRejectsBadInput) {
  FakeRoot fs;
  MakeV1Hybrid(fs);
  std::unique_ptr<CgroupManager> m = CgroupManager::Detect(fs.Options());
  ASSERT_EQ(m->mode(), CgroupMode::kV1) << m->detail();
  for (const char* id : {"", ".", "..", "a/b", "../../x"}) {
    EXPECT_EQ(m->Create(id, 0).status().code(), absl::StatusCode::kInvalidArgument) << id;
  }
  EXPECT_EQ(m->Create("c-1", -1).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<CommandCgroup>> first = m->Create("c-1", 0);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(m->Create("c-1", 0).status().code(), absl::StatusCode::kAlreadyExists);
}

// Validates the counters' file formats: v2 memory.peak and memory.events, v1
// memory.max_usage_in_bytes and memory.oom_control; a v2 kernel without memory.peak reads 0.
TEST(CgroupManagerTest, ReadsCounters) {
  FakeRoot v2;
  MakeV2Root(v2);
  std::unique_ptr<CgroupManager> m2 = CgroupManager::Detect(v2.Options());
  absl::StatusOr<std::unique_ptr<CommandCgroup>> c2 = m2->Create("c-1", 64 << 20);
  ASSERT_TRUE(c2.ok()) << c2.status();
  v2.Write("sys/fs/cgroup/kfleet/c-1/memory.events",
           "low 0\nhigh 0\nmax 40\noom 2\noom_kill 2\noom_group_kill 0\n");
  absl::StatusOr<CgroupCounters> counters = (*c2)->ReadCounters();
  ASSERT_TRUE(counters.ok()) << counters.status();
  EXPECT_EQ(counters->peak_bytes, 0);
  EXPECT_EQ(counters->oom_kills, 2u);
  EXPECT_EQ(counters->limit_bytes, 64 << 20);
  v2.Write("sys/fs/cgroup/kfleet/c-1/memory.peak", "67108864\n");
  EXPECT_EQ((*c2)->ReadCounters()->peak_bytes, 67108864);

  FakeRoot v1;
  MakeV1Hybrid(v1);
  std::unique_ptr<CgroupManager> m1 = CgroupManager::Detect(v1.Options());
  absl::StatusOr<std::unique_ptr<CommandCgroup>> c1 = m1->Create("c-1", 0);
  ASSERT_TRUE(c1.ok()) << c1.status();
  const std::string dir = "sys/fs/cgroup/memory/process_api/caf0/kfleet/c-1/";
  v1.Write(dir + "memory.max_usage_in_bytes", "1234567\n");
  v1.Write(dir + "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  counters = (*c1)->ReadCounters();
  ASSERT_TRUE(counters.ok()) << counters.status();
  EXPECT_EQ(counters->peak_bytes, 1234567);
  EXPECT_EQ(counters->oom_kills, 1u);
  EXPECT_EQ(counters->limit_bytes, 0);
}

// Validates that Detect removes the empty cgroups of an earlier run and leaves the others.
TEST(CgroupManagerTest, RemovesEmptyLeftovers) {
  FakeRoot fs;
  MakeV1Hybrid(fs);
  const std::string parent = "sys/fs/cgroup/memory/process_api/caf0/kfleet";
  std::filesystem::create_directories(fs.Path(parent + "/old-empty"));
  fs.Write(parent + "/old-busy/cgroup.procs", "1234\n");  // a file: rmdir fails as if busy
  std::unique_ptr<CgroupManager> m = CgroupManager::Detect(fs.Options());
  ASSERT_EQ(m->mode(), CgroupMode::kV1) << m->detail();
  EXPECT_FALSE(fs.Exists(parent + "/old-empty"));
  EXPECT_TRUE(fs.Exists(parent + "/old-busy"));
}

}  // namespace
}  // namespace kfleet::agent

// kctl user create: the key made here, the request sent, and the files written.
#include "cli/user_command.h"

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/config.h"
#include "cli/format.h"
#include "cli/kctl_test_runner.h"
#include "cli/user_bundle.h"
#include "common/files.h"
#include "common/pki.h"

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

mode_t Mode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

class UserCommandTest : public KctlCommandTest {
 protected:
  void SetUp() override { ASSERT_TRUE(kctl_.access.MakeCa().ok()); }
};

// Validates user create end to end: a CSR for NAME and ROLE (never the key) sent, and the four
// files written mode 0600 in a 0700 directory: the CA, a certificate for the key made here, the
// key, and a kctl.yaml naming them relative to itself.
TEST_F(UserCommandTest, CreateWritesFiles) {
  std::string out = dir_ + "/alice";
  ASSERT_EQ(
      kctl_.Run({"user", "create", "alice", "--role", "operator", "--ttl", "720h", "--out", out}),
      0)
      << kctl_.err();

  v1::CreateUserRequest request = kctl_.access.last_user();
  EXPECT_EQ(request.name(), "alice");
  EXPECT_EQ(request.role(), "operator");
  EXPECT_EQ(request.ttl(), "720h");
  EXPECT_THAT(request.csr_pem(), StartsWith("-----BEGIN CERTIFICATE REQUEST-----"));
  EXPECT_THAT(request.DebugString(), Not(HasSubstr("PRIVATE KEY")));
  absl::StatusOr<pki::CsrInfo> csr = pki::ParseCsr(request.csr_pem());
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(csr->subject.common_name, "alice");
  EXPECT_EQ(csr->subject.organizational_unit, "operator");

  EXPECT_THAT(Entries(out), ElementsAre("alice.crt", "alice.key", "ca.crt", "kctl.yaml"));
  EXPECT_EQ(Mode(out), 0700u);
  for (const char* file : {"alice.crt", "alice.key", "ca.crt", "kctl.yaml"}) {
    EXPECT_EQ(Mode(absl::StrCat(out, "/", file)), 0600u) << file;
  }
  std::string key = Read(out + "/alice.key");
  std::string cert = Read(out + "/alice.crt");
  std::string ca = Read(out + "/ca.crt");
  EXPECT_THAT(key, StartsWith("-----BEGIN PRIVATE KEY-----"));
  EXPECT_EQ(ca, kctl_.access.ca_cert_pem);
  EXPECT_TRUE(pki::CheckKeyMatches(key, cert).ok());
  EXPECT_TRUE(pki::VerifyCertificate(cert, ca, absl::Now()).ok());
  absl::StatusOr<pki::CertInfo> info = pki::ParseCertificate(cert);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->subject.common_name, "alice");
  EXPECT_EQ(info->subject.organizational_unit, "operator");

  EXPECT_EQ(Read(out + "/kctl.yaml"),
            absl::StrCat("# kctl configuration for user alice (role operator) of the kfleet "
                         "controller at ",
                         kctl_.address(),
                         "\n# (kctl --config THIS_FILE). Relative paths are relative to this "
                         "file's directory.\ncontroller: ",
                         kctl_.address(), "\nca: ca.crt\ncert: alice.crt\nkey: alice.key\n"));
  EXPECT_EQ(
      kctl_.out(),
      absl::StrCat("created user alice (role operator): certificate serial ", info->serial,
                   ", valid until ",
                   FormatTime(absl::ToUnixMillis(info->not_after), absl::UTCTimeZone()), "\nwrote ",
                   out, "/ca.crt, ", out, "/alice.crt, ", out, "/alice.key, ", out,
                   "/kctl.yaml\nThe key was made here and never sent to the controller: "
                   "give the directory to alice alone. To use it:\n  kctl --config ",
                   out, "/kctl.yaml hosts\n"));

  // The kctl.yaml written is one kctl reads: the same controller, CA, certificate and key.
  GlobalOptions flags;
  flags.config = out + "/kctl.yaml";
  absl::StatusOr<Connection> c =
      ResolveConnection(flags, [](absl::string_view) { return std::nullopt; });
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->controller, kctl_.address());
  EXPECT_EQ(c->ca_pem, ca);
  EXPECT_EQ(c->cert_pem, cert);
  EXPECT_EQ(c->key_pem, key);
}

// Validates that user create never writes over a file and stops before asking the controller.
TEST_F(UserCommandTest, RefusesToOverwrite) {
  std::string out = dir_ + "/alice";
  ASSERT_TRUE(MakeDirs(out).ok());
  ASSERT_TRUE(WriteFileAtomic(out + "/alice.key", "old key\n").ok());
  EXPECT_EQ(kctl_.Run({"user", "create", "alice", "--role", "admin", "--out", out}), 2);
  EXPECT_EQ(kctl_.err(),
            absl::StrCat("kctl: user create: ", out,
                         "/alice.key exists, and kctl never writes over credentials: remove it, "
                         "or choose another directory with --out DIR\n"));
  EXPECT_EQ(Read(out + "/alice.key"), "old key\n");
  EXPECT_THAT(Entries(out), ElementsAre("alice.key"));
  EXPECT_THAT(kctl_.access.calls(), IsEmpty());

  // A second create into a full directory stops at the first file.
  std::string bob = dir_ + "/bob";
  ASSERT_EQ(kctl_.Run({"user", "create", "bob", "--role", "viewer", "--out", bob}), 0);
  EXPECT_EQ(kctl_.Run({"user", "create", "bob", "--role", "viewer", "--out", bob}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr(bob + "/ca.crt exists"));
  EXPECT_THAT(kctl_.access.calls(), ElementsAre("CreateUser bob"));
}

// Validates the default directory, ./kfleet-NAME, and the line printed to use it.
TEST_F(UserCommandTest, DefaultDirectory) {
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(dir_.c_str()), 0);
  int code = kctl_.Run({"user", "create", "bob", "--role", "viewer"});
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_EQ(code, 0) << kctl_.err();
  EXPECT_THAT(Entries(dir_ + "/kfleet-bob"),
              ElementsAre("bob.crt", "bob.key", "ca.crt", "kctl.yaml"));
  EXPECT_THAT(kctl_.out(), HasSubstr("\nwrote kfleet-bob/ca.crt, kfleet-bob/bob.crt, "));
  EXPECT_THAT(kctl_.out(), HasSubstr("To use it:\n  kctl --config kfleet-bob/kctl.yaml hosts\n"));
}

// Validates user create -o json: the response with the files and the line to use them.
TEST_F(UserCommandTest, CreateJson) {
  std::string out = dir_ + "/carol";
  ASSERT_EQ(kctl_.Run({"user", "create", "carol", "--role", "admin", "--out", out, "-o", "json"}),
            0)
      << kctl_.err();
  nlohmann::json doc = nlohmann::json::parse(kctl_.out(), nullptr, false);
  ASSERT_TRUE(doc.is_object()) << kctl_.out();
  EXPECT_EQ(doc["name"], "carol");
  EXPECT_EQ(doc["role"], "admin");
  EXPECT_EQ(doc["key_file"], out + "/carol.key");
  EXPECT_EQ(doc["config_file"], out + "/kctl.yaml");
  EXPECT_EQ(doc["use"], "kctl --config " + out + "/kctl.yaml hosts");
  EXPECT_FALSE(doc["serial"].get<std::string>().empty());
  EXPECT_EQ(doc["certificate_pem"], Read(out + "/carol.crt"));
}

// Validates that bad names, roles and flags are refused before a key is made or the controller
// asked.
TEST_F(UserCommandTest, UsageErrors) {
  EXPECT_EQ(kctl_.Run({"user", "create", "alice", "--role", "operater"}), 2);
  EXPECT_EQ(kctl_.err(),
            "kctl: user create: --role: unknown role \"operater\" (did you mean \"operator\"?) "
            "(expected admin, operator or viewer)\n");
  EXPECT_EQ(kctl_.Run({"user", "create", "alice"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: user create: --role is required"));
  EXPECT_EQ(kctl_.Run({"user", "create", "../evil", "--role", "admin"}), 2);
  EXPECT_EQ(kctl_.err(),
            "kctl: user create: invalid user name \"../evil\": use 1 to 64 letters, digits, '.', "
            "'_' and '-', starting with a letter or digit (e.g. alice)\n");
  EXPECT_EQ(kctl_.Run({"user", "create", "--role", "admin"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: user create: missing NAME"));
  EXPECT_EQ(kctl_.Run({"user", "create", "alice", "--role", "admin", "--ttl", "1y"}), 2);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: user create: --ttl: invalid duration \"1y\""));
  EXPECT_THAT(kctl_.access.calls(), IsEmpty());
}

// Validates that a certificate for another key is refused and nothing is written.
TEST_F(UserCommandTest, ForeignCertificate) {
  absl::StatusOr<std::string> other_key = pki::GenerateKeyPem();
  ASSERT_TRUE(other_key.ok());
  absl::StatusOr<std::string> other_public = pki::PublicKeyPem(*other_key);
  ASSERT_TRUE(other_public.ok());
  pki::IssueOptions options;
  options.subject = pki::Subject{"alice", "admin"};
  options.not_before = absl::Now() - absl::Hours(1);
  options.not_after = absl::Now() + absl::Hours(1);
  absl::StatusOr<std::string> cert = pki::IssueCertificate(
      kctl_.access.ca_cert_pem, kctl_.access.ca_key_pem, *other_public, options);
  ASSERT_TRUE(cert.ok()) << cert.status();
  kctl_.access.user.set_certificate_pem(*cert);
  kctl_.access.user.set_ca_pem(kctl_.access.ca_cert_pem);
  kctl_.access.user.set_serial("1");
  kctl_.access.ca_cert_pem.clear();  // answer `user` as it is

  std::string out = dir_ + "/alice";
  EXPECT_EQ(kctl_.Run({"user", "create", "alice", "--role", "admin", "--out", out}), 3);
  EXPECT_THAT(kctl_.err(), StartsWith("kctl: user create: the controller's answer cannot be used: "
                                      "its certificate is not for the key made here"));
  EXPECT_THAT(Entries(dir_), IsEmpty());
}

// Validates WriteNewFile: the mode asked for, no writing over an existing file, no temporary file
// left behind.
TEST_F(KctlCommandTest, WriteNewFile) {
  std::string path = dir_ + "/f";
  ASSERT_TRUE(WriteNewFile(path, "one", 0600).ok());
  EXPECT_EQ(Mode(path), 0600u);
  absl::Status s = WriteNewFile(path, "two", 0600);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_EQ(Read(path), "one");
  EXPECT_THAT(Entries(dir_), ElementsAre("f"));
  ASSERT_TRUE(WriteNewFile(dir_ + "/g", "", 0644).ok());
  EXPECT_EQ(Mode(dir_ + "/g"), 0644u);
}

}  // namespace
}  // namespace kfleet::cli

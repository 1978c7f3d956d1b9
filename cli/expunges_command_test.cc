#include "cli/expunges_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/kctl_test_runner.h"
#include "common/files.h"

namespace kfleet::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const std::string kTestdata = std::string(KFLEET_CLI_TESTDATA) + "/expunges";
const std::string kKdevops = kTestdata + "/kdevops";
const std::string kExpunges = kKdevops + "/workflows/fstests/expunges";

class ExpungesCommandTest : public KctlCommandTest {};

// Validates that a kdevops tree is found below its root, every list is sent byte for byte with
// its kernel, file system and section, and other files are named and skipped.
TEST_F(ExpungesCommandTest, ImportKdevopsTree) {
  EXPECT_EQ(kctl_.Run({"expunges", "import", kKdevops}), 0) << kctl_.err();
  std::vector<v1::ImportExpungesRequest> requests = kctl_.service.import_requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_FALSE(requests[0].replace());
  std::vector<std::string> sent;
  for (const v1::ExpungeFile& f : requests[0].files()) {
    sent.push_back(f.kernel() + " " + f.fs() + " " + f.section());
    EXPECT_EQ(f.content(), *ReadFile(kExpunges + "/" + f.kernel() + "/" + f.fs() + "/unassigned/" +
                                     f.section() + ".txt"));
  }
  EXPECT_THAT(sent, ElementsAre("6.1.0 xfs xfs_crc", "6.1.0 xfs xfs_reflink", "any nfs all"));
  EXPECT_THAT(kctl_.out(), HasSubstr("imported 6.1.0/xfs/unassigned/xfs_crc.txt\n"));
  EXPECT_THAT(kctl_.out(), HasSubstr("imported 3 files, "));
  EXPECT_THAT(kctl_.err(), HasSubstr("skipped " + kExpunges + "/README: not "));

  EXPECT_EQ(kctl_.Run({"expunges", "import", kExpunges, "--replace"}), 0) << kctl_.err();
  ASSERT_EQ(kctl_.service.import_requests().size(), 2u);
  EXPECT_TRUE(kctl_.service.import_requests()[1].replace());
}

// Validates that every error of every file is reported at once, as FILE:LINE, and that nothing
// is sent when any file has one.
TEST_F(ExpungesCommandTest, ImportReportsAllErrorsAndSendsNothing) {
  EXPECT_EQ(kctl_.Run({"expunges", "import", kTestdata + "/bad"}), 2);
  std::string err = kctl_.err();
  EXPECT_THAT(err, HasSubstr("kctl: " + kTestdata +
                             "/bad/6.1.0/ext4/unassigned/ext4_1k.txt:2: \"/ext4/035\" is not a "
                             "test name"));
  EXPECT_THAT(err, HasSubstr("/bad/6.1.0/xfs/unassigned/xfs_crc.txt:2: \"generic 002\""));
  EXPECT_THAT(err, HasSubstr("/bad/6.1.0/xfs/unassigned/xfs_crc.txt:4: \"xfs/\""));
  EXPECT_THAT(err, Not(HasSubstr("ext4_4k.txt")));
  EXPECT_THAT(err, HasSubstr("nothing imported"));
  EXPECT_THAT(kctl_.service.calls(), IsEmpty());
  EXPECT_THAT(kctl_.out(), IsEmpty());
}

// Validates the usage errors: a missing or empty directory, flags of other actions.
TEST_F(ExpungesCommandTest, ImportUsage) {
  EXPECT_EQ(kctl_.Run({"expunges", "import", dir_ + "/nope"}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("is not a directory"));
  EXPECT_EQ(kctl_.Run({"expunges", "import", dir_}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("no KERNEL/FS/unassigned/SECTION.txt files below"));
  EXPECT_EQ(kctl_.Run({"expunges", "import", dir_, "--kernel", "6.1"}), 2);
  EXPECT_EQ(kctl_.Run({"expunges", "frob"}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("expected import, export or candidates"));
  EXPECT_THAT(kctl_.service.calls(), IsEmpty());
}

// Validates the round trip through the controller: what export writes is byte for byte what was
// imported, in the same layout, and the filters and candidates reach the controller and the user.
TEST_F(ExpungesCommandTest, ExportWritesWhatWasImported) {
  ASSERT_EQ(kctl_.Run({"expunges", "import", kKdevops}), 0) << kctl_.err();
  v1::RemovalCandidate c;
  c.set_kernel("6.1.0");
  c.set_fs("xfs");
  c.set_section("xfs_crc");
  c.set_test("generic/245");
  c.set_passes(5);
  kctl_.service.candidates.push_back(c);

  EXPECT_EQ(kctl_.Run({"expunges", "export", dir_}), 0) << kctl_.err();
  for (const char* rel : {"6.1.0/xfs/unassigned/xfs_crc.txt",
                          "6.1.0/xfs/unassigned/xfs_reflink.txt", "any/nfs/unassigned/all.txt"}) {
    absl::StatusOr<std::string> written = ReadFile(dir_ + "/" + rel);
    ASSERT_TRUE(written.ok()) << written.status();
    EXPECT_EQ(*written, *ReadFile(kExpunges + "/" + rel)) << rel;
  }
  EXPECT_THAT(kctl_.out(),
              HasSubstr("wrote " + dir_ + "/6.1.0/xfs/unassigned/xfs_crc.txt (5 tests)\n"));
  EXPECT_THAT(kctl_.out(), HasSubstr("generic/245: passed 5 runs in a row while expunged on "
                                     "6.1.0/xfs section xfs_crc: candidate for removal\n"));

  EXPECT_EQ(kctl_.Run({"expunges", "export", dir_ + "/nfs", "--kernel", "any", "--fs", "nfs",
                       "--pass-streak", "9"}),
            0)
      << kctl_.err();
  EXPECT_TRUE(ReadFile(dir_ + "/nfs/any/nfs/unassigned/all.txt").ok());
  EXPECT_FALSE(ReadFile(dir_ + "/nfs/6.1.0/xfs/unassigned/xfs_crc.txt").ok());
  v1::ExportExpungesRequest last = kctl_.service.export_requests().back();
  EXPECT_EQ(last.kernel(), "any");
  EXPECT_EQ(last.fs(), "nfs");
  EXPECT_EQ(last.pass_streak(), 9u);

  EXPECT_EQ(kctl_.Run({"expunges", "export", dir_, "--pass-streak", "0"}), 2);
  EXPECT_THAT(kctl_.err(), HasSubstr("--pass-streak: \"0\" is not a number from 1 to 1000"));
}

// Validates that export refuses names from the controller that would write outside DIR.
TEST_F(ExpungesCommandTest, ExportRefusesPathsOutsideDir) {
  v1::ImportExpungesRequest evil;
  v1::ExpungeFile* f = evil.add_files();
  f->set_kernel("..");
  f->set_fs("xfs");
  f->set_section("x");
  f->set_content("generic/001\n");
  v1::ImportExpungesResponse ignored;
  grpc::ServerContext context;
  ASSERT_TRUE(kctl_.service.ImportExpunges(&context, &evil, &ignored).ok());
  EXPECT_EQ(kctl_.Run({"expunges", "export", dir_}), 3);
  EXPECT_THAT(kctl_.err(), HasSubstr("cannot be a path"));
  EXPECT_FALSE(ReadFile(dir_ + "/../xfs/unassigned/x.txt").ok());
}

// Validates that candidates prints only the candidates, and says so when there are none.
TEST_F(ExpungesCommandTest, Candidates) {
  EXPECT_EQ(kctl_.Run({"expunges", "candidates", "--fs", "xfs"}), 0);
  EXPECT_THAT(kctl_.out(), IsEmpty());
  EXPECT_THAT(kctl_.err(), HasSubstr("No candidates for removal."));
  v1::RemovalCandidate c;
  c.set_kernel("6.1.0");
  c.set_fs("xfs");
  c.set_section("xfs_crc");
  c.set_test("xfs/301");
  c.set_passes(7);
  kctl_.service.candidates.push_back(c);
  EXPECT_EQ(kctl_.Run({"expunges", "candidates"}), 0);
  EXPECT_EQ(kctl_.out(),
            "xfs/301: passed 7 runs in a row while expunged on 6.1.0/xfs section xfs_crc: "
            "candidate for removal\n");
  EXPECT_EQ(kctl_.service.export_requests().front().fs(), "xfs");
}

}  // namespace
}  // namespace kfleet::cli

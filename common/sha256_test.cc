#include "common/sha256.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "common/files.h"

namespace kfleet {
namespace {

std::string Hex(absl::string_view data) {
  absl::StatusOr<Sha256> h = Sha256::Create();
  EXPECT_TRUE(h.ok());
  h->Update(data);
  absl::StatusOr<std::string> hex = h->FinishHex();
  EXPECT_TRUE(hex.ok());
  return hex.ok() ? *hex : "";
}

// Validates the digest against the FIPS 180-2 test vectors, fed whole and in pieces.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  absl::StatusOr<Sha256> h = Sha256::Create();
  ASSERT_TRUE(h.ok());
  h->Update("a");
  h->Update("");
  h->Update("bc");
  EXPECT_EQ(*h->FinishHex(), Hex("abc"));
}

// Validates that a file hashes as its content, with its size.
TEST(Sha256Test, File) {
  char dir[] = "/tmp/kfleet-sha256-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/f";
  std::string data(3 << 20, 'x');
  data += "tail";
  ASSERT_TRUE(WriteFileAtomic(path, data).ok());
  absl::StatusOr<FileDigest> d = Sha256OfFile(path);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->sha256, Hex(data));
  EXPECT_EQ(d->size, data.size());
  EXPECT_EQ(Sha256OfFile(std::string(dir) + "/missing").status().code(),
            absl::StatusCode::kNotFound);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

// Validates the one accepted form: 64 lower-case hex digits.
TEST(Sha256Test, IsSha256Hex) {
  EXPECT_TRUE(IsSha256Hex(std::string(64, 'a')));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'A')));
  EXPECT_FALSE(IsSha256Hex(std::string(63, 'a')));
  EXPECT_FALSE(IsSha256Hex(std::string(63, 'a') + "g"));
  EXPECT_FALSE(IsSha256Hex(""));
}

}  // namespace
}  // namespace kfleet

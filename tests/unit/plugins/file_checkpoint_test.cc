#include "source/file/checkpoint.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "plugin_test_support.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::TempDir;

FilePosition at(uint64_t ino, uint64_t offset) {
  return {"/log/app.log", 1, ino, offset};
}

TEST(CheckpointTracker, AdvancesOverTheAcknowledgedPrefixOnly) {
  CheckpointTracker t("/log/app.log");
  uint64_t a = t.add(1, 7, 10);
  uint64_t b = t.add(1, 7, 25);
  uint64_t c = t.add(1, 7, 40);
  EXPECT_EQ(t.unresolved(), 3u);
  EXPECT_FALSE(t.resolve(c, true));  // out of order: waits for a and b
  EXPECT_FALSE(t.committed());
  EXPECT_TRUE(t.resolve(a, true));
  EXPECT_EQ(t.committed(), at(7, 10));
  EXPECT_TRUE(t.resolve(b, true));
  EXPECT_EQ(t.committed(), at(7, 40));
  EXPECT_EQ(t.unresolved(), 0u);
}

TEST(CheckpointTracker, StartsFromAGivenPositionAndIgnoresUnknownTickets) {
  CheckpointTracker t("/log/app.log", at(7, 100));
  EXPECT_EQ(t.committed(), at(7, 100));
  EXPECT_FALSE(t.resolve(5, true));
  uint64_t a = t.add(1, 7, 120);
  EXPECT_TRUE(t.resolve(a, true));
  EXPECT_FALSE(t.resolve(a, true));  // a second verdict changes nothing
  EXPECT_EQ(t.committed(), at(7, 120));
}

TEST(CheckpointTracker, AFailureStopsTheCheckpointBeforeItForGood) {
  CheckpointTracker t("/log/app.log");
  uint64_t a = t.add(1, 7, 10);
  uint64_t b = t.add(1, 7, 20);
  uint64_t c = t.add(1, 7, 30);
  EXPECT_FALSE(t.resolve(b, false));
  EXPECT_FALSE(t.stopped_by_failure());  // a is still pending
  EXPECT_TRUE(t.resolve(a, true));
  EXPECT_TRUE(t.stopped_by_failure());
  EXPECT_EQ(t.committed(), at(7, 10));
  EXPECT_FALSE(t.resolve(c, true));
  uint64_t d = t.add(1, 7, 40);
  EXPECT_EQ(t.unresolved(), 1u);
  EXPECT_FALSE(t.resolve(d, true));
  EXPECT_EQ(t.committed(), at(7, 10));
  EXPECT_EQ(t.unresolved(), 0u);
}

TEST(CheckpointTracker, FollowsANewFileOnceTheOldOnesRangesAreAcknowledged) {
  CheckpointTracker t("/log/app.log");
  uint64_t old1 = t.add(1, 7, 10);
  uint64_t opened = t.add(1, 8, 0);  // the new file, opened at its beginning
  uint64_t new1 = t.add(1, 8, 5);
  EXPECT_FALSE(t.resolve(opened, true));
  EXPECT_FALSE(t.resolve(new1, true));
  EXPECT_FALSE(t.committed());
  EXPECT_TRUE(t.resolve(old1, true));
  EXPECT_EQ(t.committed(), at(8, 5));
}

TEST(CheckpointFile, WritesAtomicallyAndReadsBack) {
  TempDir dir;
  const std::string file = dir.file("checkpoint.json");
  std::string error;
  EXPECT_FALSE(read_checkpoint(file, error));
  EXPECT_EQ(error, "");  // none yet: not an error

  FilePosition p{"/var/log/a \"quoted\".log", 2049, 1234567, 99};
  ASSERT_TRUE(write_checkpoint(file, p, error)) << error;
  p.offset = 100;
  ASSERT_TRUE(write_checkpoint(file, p, error)) << error;
  auto back = read_checkpoint(file, error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(*back, p);
  // Only the file itself is left: the temporary was renamed over it.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(CheckpointFile, ADamagedFileIsReportedNotUsed) {
  TempDir dir;
  const std::string file = dir.file("checkpoint.json");
  for (const char* text : {"", "{\"path\":\"/a\",\"dev\":1,", "garbage", "{\"path\":\"/a\"}",
                           "{\"path\":\"/a\",\"dev\":-1,\"ino\":2,\"offset\":3}", "[1,2]"}) {
    std::ofstream(file, std::ios::trunc) << text;
    std::string error;
    EXPECT_FALSE(read_checkpoint(file, error)) << text;
    EXPECT_NE(error.find("damaged checkpoint"), std::string::npos) << text << ": " << error;
  }
}

TEST(CheckpointFile, AWriteIntoAMissingDirectoryFailsWithTheReason) {
  TempDir dir;
  std::string error;
  EXPECT_FALSE(write_checkpoint(dir.file("gone/checkpoint.json"), at(1, 1), error));
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

}  // namespace
}  // namespace ingestd::plugins

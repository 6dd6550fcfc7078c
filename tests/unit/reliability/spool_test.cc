// Spool: order, segment lifecycle, persistence of delivery, recovery from damage, bounds.
#include "reliability/spool.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "batch_testing.h"
#include "fake_context.h"

namespace ingestd::reliability {
namespace {

namespace fs = std::filesystem;
using Status = Spool::AppendStatus;
using config::SpoolConfig;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::vector<fs::path> files(const fs::path& dir, const std::string& extension) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == extension) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "spool_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "spool" / "out";
    config_.fsync = SpoolConfig::Fsync::kNever;
  }
  void TearDown() override {
    spool_.reset();
    fs::remove_all(root_);
  }

  Spool& open() {
    spool_.reset();
    std::string error;
    spool_ = Spool::open(dir_, config_, clock_, recovery_, error);
    EXPECT_NE(spool_, nullptr) << error;
    return *spool_;
  }

  void append(const std::string& tag, int events = 1) {
    Spool::AppendResult r = spool_->append(*testing::numbered_batch(tag, events));
    ASSERT_EQ(r.status, Status::kOk) << r.error;
  }

  // Claims one record and returns its tag ("" when there is none), releasing it as `delivered`.
  std::string take(bool delivered = true) {
    std::optional<Spool::Claim> c = spool_->claim();
    if (!c) return "";
    std::string tag = c->batch->origin.component;
    spool_->release(*c, delivered);
    return tag;
  }

  // A closed spool of three records in one segment; returns the segment.
  fs::path spool_first_second_third() {
    open();
    append("first");
    append("second");
    append("third");
    spool_->close();
    return files(dir_, ".seg").at(0);
  }

  static void flip(const fs::path& path, size_t at, char mask) {
    std::string bytes = read_bytes(path);
    ASSERT_LT(at, bytes.size());
    bytes[at] ^= mask;
    write_bytes(path, bytes);
  }

  std::vector<std::string> drain() {
    std::vector<std::string> out;
    for (std::string tag = take(); !tag.empty(); tag = take()) out.push_back(tag);
    return out;
  }

  fs::path root_;
  fs::path dir_;
  SpoolConfig config_;
  testing::FakeClock clock_{1'000'000'000};
  Spool::Recovery recovery_;
  std::unique_ptr<Spool> spool_;
};

TEST_F(SpoolTest, ClaimsInAppendOrderAcrossSegments) {
  config_.segment_size = 200;  // about two small batches per segment
  open();
  for (int i = 0; i < 9; ++i) append("b" + std::to_string(i), 2);
  EXPECT_EQ(spool_->records(), 9u);
  EXPECT_EQ(spool_->events(), 18u);
  EXPECT_GT(spool_->segments(), 3u);
  EXPECT_EQ(spool_->bytes(), [&] {
    uint64_t sum = 0;
    for (const fs::path& p : files(dir_, ".seg")) sum += fs::file_size(p);
    return sum;
  }());

  std::optional<Spool::Claim> first = spool_->claim();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->events, 2u);
  testing::expect_same_batch(*first->batch, *testing::numbered_batch("b0", 2));
  EXPECT_TRUE(first->batch->acks.empty());
  spool_->release(*first, true);
  EXPECT_EQ(drain(), (std::vector<std::string>{"b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"}));
  EXPECT_EQ(spool_->records(), 0u);
  EXPECT_EQ(spool_->events(), 0u);
  EXPECT_EQ(spool_->segments(), 1u);  // the one still appended to
  EXPECT_EQ(spool_->totals().appended_events, 18u);
  EXPECT_EQ(spool_->totals().delivered_events, 18u);
}

TEST_F(SpoolTest, AReleasedRecordComesBackFirst) {
  open();
  append("a");
  append("b");
  append("c");
  std::optional<Spool::Claim> a = spool_->claim();
  std::optional<Spool::Claim> b = spool_->claim();
  ASSERT_TRUE(a && b);
  spool_->release(*b, false);
  spool_->release(*a, false);
  EXPECT_EQ(take(false), "a");  // and back again
  EXPECT_EQ(drain(), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(SpoolTest, DeletesASegmentOnlyWhenEveryRecordIsDelivered) {
  config_.segment_size = 200;
  open();
  for (int i = 0; i < 4; ++i) append("b" + std::to_string(i));
  std::vector<fs::path> before = files(dir_, ".seg");
  ASSERT_GE(before.size(), 2u);
  std::vector<Spool::Claim> first;  // the records of the first segment
  for (std::optional<Spool::Claim> c = spool_->claim(); c && c->segment == 1; c = spool_->claim())
    first.push_back(std::move(*c));
  ASSERT_GE(first.size(), 2u);
  for (size_t i = first.size() - 1; i > 0; --i) spool_->release(first[i], true);
  EXPECT_TRUE(fs::exists(before[0]));
  spool_->release(first[0], true);
  EXPECT_FALSE(fs::exists(before[0]));
  EXPECT_EQ(files(dir_, ".seg").size(), before.size() - 1);
}

TEST_F(SpoolTest, ReopenReplaysOnlyWhatWasNotDelivered) {
  open();
  for (int i = 0; i < 5; ++i) append("b" + std::to_string(i), 3);
  EXPECT_EQ(take(), "b0");
  EXPECT_EQ(take(), "b1");
  std::optional<Spool::Claim> claimed = spool_->claim();  // outstanding at close: replayed
  EXPECT_TRUE(claimed);
  spool_->close();
  EXPECT_EQ(spool_->claim(), std::nullopt);
  EXPECT_EQ(spool_->append(*testing::numbered_batch("late", 1)).status, Status::kError);

  open();
  EXPECT_EQ(recovery_.segments, 1u);
  EXPECT_EQ(recovery_.records, 3u);
  EXPECT_EQ(recovery_.events, 9u);
  EXPECT_EQ(recovery_.delivered_records, 2u);
  EXPECT_EQ(recovery_.torn_bytes, 0u);
  EXPECT_EQ(recovery_.corrupt_records, 0u);
  EXPECT_TRUE(recovery_.moved_aside.empty());
  EXPECT_TRUE(recovery_.problems.empty());
  append("b5");
  EXPECT_EQ(drain(), (std::vector<std::string>{"b2", "b3", "b4", "b5"}));
  spool_->close();
  open();
  EXPECT_EQ(recovery_.records, 0u);
  EXPECT_EQ(spool_->segments(), 0u);
  EXPECT_EQ(drain(), std::vector<std::string>{});
}

TEST_F(SpoolTest, AfterACrashOnlyDeliveriesSinceTheLastCursorAreReplayed) {
  open();
  const int n = static_cast<int>(Spool::kCursorEvery) + 6;
  for (int i = 0; i < n; ++i) append("b" + std::to_string(i));
  for (int i = 0; i < n - 1; ++i) take();
  // A crash: the files as they are now, without close().
  fs::path crashed = root_ / "crashed";
  fs::copy(dir_, crashed);
  dir_ = crashed;
  open();
  EXPECT_EQ(recovery_.delivered_records, Spool::kCursorEvery);
  std::vector<std::string> replayed = drain();
  ASSERT_EQ(replayed.size(), 6u);
  EXPECT_EQ(replayed.front(), "b" + std::to_string(Spool::kCursorEvery));
  EXPECT_EQ(replayed.back(), "b" + std::to_string(n - 1));
}

TEST_F(SpoolTest, ATornTailIsTruncatedAndEverythingBeforeKept) {
  open();
  append("a");
  append("b");
  append("c");
  spool_->close();
  fs::path seg = files(dir_, ".seg").at(0);
  uint64_t full = fs::file_size(seg);
  fs::resize_file(seg, full - 5);  // the last record cut short

  open();
  EXPECT_EQ(recovery_.records, 2u);
  // The three records are the same size: what is left of the third is the torn tail.
  EXPECT_EQ(recovery_.torn_bytes, (full - 12) / 3 - 5);
  EXPECT_GT(recovery_.torn_bytes, 0u);
  EXPECT_EQ(recovery_.corrupt_records, 0u);
  EXPECT_EQ(fs::file_size(seg), full - 5 - recovery_.torn_bytes);
  append("d");  // into a new segment
  EXPECT_EQ(drain(), (std::vector<std::string>{"a", "b", "d"}));
}

TEST_F(SpoolTest, GarbageAfterTheLastRecordIsATornTail) {
  open();
  append("a");
  append("b");
  spool_->close();
  fs::path seg = files(dir_, ".seg").at(0);
  uint64_t full = fs::file_size(seg);
  std::ofstream(seg, std::ios::binary | std::ios::app) << std::string("\x13garbage and more", 16);

  open();
  EXPECT_EQ(recovery_.records, 2u);
  EXPECT_EQ(recovery_.torn_bytes, 16u);
  EXPECT_EQ(fs::file_size(seg), full);
  EXPECT_EQ(drain(), (std::vector<std::string>{"a", "b"}));
}

TEST_F(SpoolTest, ABitFlipSkipsThatRecordOnlyAndIsCounted) {
  fs::path seg = spool_first_second_third();
  flip(seg, read_bytes(seg).find("second:0"), 0x04);  // in the raw bytes of "second"
  open();
  EXPECT_EQ(recovery_.records, 2u);
  EXPECT_EQ(recovery_.corrupt_records, 1u);
  EXPECT_EQ(recovery_.torn_bytes, 0u);
  EXPECT_EQ(spool_->totals().corrupt_records, 1u);
  EXPECT_EQ(drain(), (std::vector<std::string>{"first", "third"}));
}

TEST_F(SpoolTest, ADamagedRecordHeaderIsSkippedToTheNextGoodRecord) {
  fs::path seg = spool_first_second_third();
  // The second byte of the second record's length: its 20-byte header comes before the payload's
  // version byte, ingest time (8) and component length (1), then "second".
  flip(seg, read_bytes(seg).find("second") - 1 - 8 - 1 - 20 + 1, 0x10);
  open();
  EXPECT_EQ(recovery_.records, 2u);
  EXPECT_EQ(recovery_.corrupt_records, 1u);
  EXPECT_EQ(drain(), (std::vector<std::string>{"first", "third"}));
}

TEST_F(SpoolTest, ARecordDamagedAfterOpenIsSkippedOnRead) {
  open();
  append("first");
  append("second");
  append("third");
  fs::path seg = files(dir_, ".seg").at(0);
  flip(seg, read_bytes(seg).find("second:0"), 0x01);
  EXPECT_EQ(drain(), (std::vector<std::string>{"first", "third"}));
  EXPECT_EQ(spool_->totals().corrupt_records, 1u);
  EXPECT_EQ(spool_->records(), 0u);
}

TEST_F(SpoolTest, UnreadableSegmentsAreMovedAsideAndReported) {
  open();
  append("a");
  spool_->close();
  fs::create_directories(dir_);
  write_bytes(dir_ / "00000000000000000007.seg", "not a spool segment at all");
  fs::create_directory(dir_ / "00000000000000000008.seg");
  write_bytes(dir_ / "00000000000000000009.seg",
              std::string("INGSPOOL\x02\x00\x00\x00", 12) + "future records");
  write_bytes(dir_ / "notes.txt", "ignored");

  open();
  EXPECT_EQ(recovery_.records, 1u);
  ASSERT_EQ(recovery_.moved_aside.size(), 3u);
  EXPECT_EQ(recovery_.moved_aside[0], (dir_ / "00000000000000000007.seg.bad").string() +
                                          ": no spool segment header (bad magic)");
  EXPECT_EQ(recovery_.moved_aside[1],
            (dir_ / "00000000000000000008.seg.bad").string() + ": not a regular file");
  EXPECT_EQ(recovery_.moved_aside[2], (dir_ / "00000000000000000009.seg.bad").string() +
                                          ": segment format version 2; this build reads 1");
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000000007.seg.bad"));
  // New segments are numbered past everything seen, .bad ones included.
  append("b");
  EXPECT_TRUE(fs::exists(dir_ / "00000000000000000010.seg"));
  EXPECT_EQ(drain(), (std::vector<std::string>{"a", "b"}));
  spool_->close();
  open();
  EXPECT_TRUE(recovery_.moved_aside.empty());
}

TEST_F(SpoolTest, AnEmptyNewestSegmentFromACrashIsRemoved) {
  open();
  append("a");
  spool_->close();
  write_bytes(dir_ / "00000000000000000005.seg", "INGSP");
  open();
  EXPECT_EQ(recovery_.torn_bytes, 5u);
  EXPECT_FALSE(fs::exists(dir_ / "00000000000000000005.seg"));
  EXPECT_EQ(drain(), std::vector<std::string>{"a"});
}

TEST_F(SpoolTest, AnUnreadableCursorReplaysEverything) {
  open();
  append("a");
  append("b");
  take();
  spool_->close();
  write_bytes(dir_ / "cursor", "ingestd-spool-cursor 1 x\n");
  open();
  ASSERT_EQ(recovery_.problems.size(), 1u);
  EXPECT_EQ(recovery_.problems[0],
            (dir_ / "cursor").string() + ": not a spool cursor; replaying from the start");
  EXPECT_EQ(drain(), (std::vector<std::string>{"a", "b"}));
}

TEST_F(SpoolTest, ASecondOpenOfTheSameDirectoryFails) {
  open();
  Spool::Recovery report;
  std::string error;
  EXPECT_EQ(Spool::open(dir_, config_, clock_, report, error), nullptr);
  EXPECT_EQ(error, "spool directory " + dir_.string() +
                       " is in use: another process (or another spool in this one) holds the "
                       "lock on " +
                       (dir_ / "lock").string());
  spool_->close();
  EXPECT_NE(Spool::open(dir_, config_, clock_, report, error), nullptr);
}

TEST_F(SpoolTest, AnUnusableDirectoryIsAnErrorWithTheReason) {
  write_bytes(root_ / "file", "x");
  Spool::Recovery report;
  std::string error;
  EXPECT_EQ(Spool::open(root_ / "file" / "spool", config_, clock_, report, error), nullptr);
  EXPECT_EQ(error, "spool directory " + (root_ / "file" / "spool").string() + ": cannot create " +
                       (root_ / "file").string() + ": Not a directory");
}

TEST_F(SpoolTest, CreatesTheDirectoryPrivate) {
  open();
  EXPECT_EQ(fs::status(dir_).permissions() & fs::perms::all,
            fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
}

TEST_F(SpoolTest, BlocksWhenFull) {
  config_.max_size = 400;
  config_.segment_size = 200;
  open();
  int appended = 0;
  Spool::AppendResult r;
  while ((r = spool_->append(*testing::numbered_batch("b" + std::to_string(appended), 1))).status ==
         Status::kOk)
    ++appended;
  EXPECT_EQ(r.status, Status::kFull);
  EXPECT_EQ(r.dropped_events, 0u);
  EXPECT_GE(appended, 3);
  uint64_t bytes = spool_->bytes();
  EXPECT_LE(bytes, 400u);
  EXPECT_EQ(spool_->records(), static_cast<uint64_t>(appended));
  // Delivering the first segment makes room.
  EXPECT_EQ(take(), "b0");
  EXPECT_EQ(take(), "b1");
  EXPECT_EQ(take(), "b2");
  EXPECT_LT(spool_->bytes(), bytes);
  append("more");
}

TEST_F(SpoolTest, AlwaysAdmitsABatchIntoAnEmptySpool) {
  config_.max_size = 100;
  config_.segment_size = 100;
  open();
  append("big", 20);
  EXPECT_GT(spool_->bytes(), 100u);
  EXPECT_EQ(spool_->append(*testing::numbered_batch("next", 1)).status, Status::kFull);
}

TEST_F(SpoolTest, DropOldestDeletesWholeOldSegmentsAndCountsTheirEvents) {
  config_.max_size = 400;
  config_.segment_size = 200;
  config_.when_full = SpoolConfig::SpoolFull::kDropOldest;
  open();
  uint64_t dropped = 0;
  for (int i = 0; i < 12; ++i) {
    Spool::AppendResult r = spool_->append(*testing::numbered_batch("b" + std::to_string(i), 2));
    ASSERT_EQ(r.status, Status::kOk);
    dropped += r.dropped_events;
  }
  EXPECT_LE(spool_->bytes(), 400u);
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(dropped % 2, 0u);
  EXPECT_EQ(spool_->totals().dropped_events, dropped);
  EXPECT_EQ(spool_->events() + dropped, 24u);
  std::vector<std::string> left = drain();
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(left.back(), "b11");
  EXPECT_EQ(left.front(), "b" + std::to_string(dropped / 2));
}

TEST_F(SpoolTest, DropOldestNeverDropsASegmentWithAClaim) {
  config_.max_size = 400;
  config_.segment_size = 200;
  config_.when_full = SpoolConfig::SpoolFull::kDropOldest;
  open();
  append("b0");
  std::optional<Spool::Claim> held = spool_->claim();
  ASSERT_TRUE(held);
  for (int i = 1; i < 12; ++i) {
    Spool::AppendResult r = spool_->append(*testing::numbered_batch("b" + std::to_string(i), 1));
    ASSERT_EQ(r.status, Status::kOk) << i;
  }
  spool_->release(*held, false);
  std::vector<std::string> left = drain();
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(left.front(), "b0");
}

TEST_F(SpoolTest, SyncPoliciesWriteTheSameData) {
  for (auto policy :
       {SpoolConfig::Fsync::kAlways, SpoolConfig::Fsync::kInterval, SpoolConfig::Fsync::kNever}) {
    config_.fsync = policy;
    config_.fsync_interval_ns = 1'000'000;
    open();
    append("x");
    clock_.advance(2'000'000);
    append("y");
    spool_->sync();
    EXPECT_EQ(drain(), (std::vector<std::string>{"x", "y"}));
    spool_->close();
  }
}

}  // namespace
}  // namespace ingestd::reliability

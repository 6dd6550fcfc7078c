#include "sink/file/file_sink.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "fake_context.h"
#include "ingestd/plugin.h"
#include "plugin_test_support.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::FakeContext;

constexpr ComponentDescriptor kDescriptor =
    describe<FileSink>(Kind::kSink, "file", kFileSinkDoc, kFileSinkOptions, kSingleWorker);

Options parse_options(const std::string& yaml) {
  return ingestd::testing::options_or_fail(kDescriptor, yaml);
}

using ingestd::testing::TempDir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Two events: one read by a source (raw bytes and fields), one made by an aggregator (fields
// only).
BatchPtr mixed_batch() {
  auto batch = std::make_unique<Batch>();
  Event& read = batch->add(batch->copy(R"({"a": 1, "b":"x"})"), 5);
  batch->append_field(read, "a", Value::integer(1));
  batch->append_field(read, "b", Value::string("x"));
  Event& made = batch->add({}, 6);
  batch->append_field(made, "n", Value::number(2.5));
  batch->append_field(made, "s", Value::string("q\"t"));
  return batch;
}

BatchPtr raw_batch(const std::vector<std::string>& lines) {
  auto batch = std::make_unique<Batch>();
  for (const auto& line : lines) batch->add(batch->copy(line), 0);
  return batch;
}

struct Sinking {
  FakeContext ctx{"out"};
  std::unique_ptr<FileSink> sink;

  void open(const std::string& yaml) {
    CollectingDiagnostics diag;
    sink = std::make_unique<FileSink>(parse_options(yaml), diag);
    ASSERT_TRUE(diag.errors.empty()) << diag.errors[0].second;
    ASSERT_TRUE(sink->start(ctx));
  }
  void write(const Batch& batch) {
    SinkResult r = sink->write(ctx, batch);
    ASSERT_EQ(r.status, SinkStatus::kOk) << r.error;
  }
};

TEST(FileSink, EncodingsWriteRawBytesOrFields) {
  TempDir dir;
  BatchPtr batch = mixed_batch();
  const std::string raw_line = R"({"a": 1, "b":"x"})";
  const std::string fields_a = R"({"a":1,"b":"x"})";
  const std::string fields_b = R"({"n":2.5,"s":"q\"t"})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"auto", raw_line + "\n" + fields_b + "\n"},
      {"json", fields_a + "\n" + fields_b + "\n"},
      {"raw", raw_line + "\n\n"},
  };
  for (const auto& [encoding, want] : cases) {
    SCOPED_TRACE(encoding);
    const std::string path = dir.file(encoding + ".jsonl");
    Sinking s;
    s.open("{path: " + path + ", encoding: " + encoding + "}");
    s.write(*batch);
    EXPECT_EQ(read_file(path), want);
    EXPECT_EQ(s.ctx.count("bytes"), want.size());
  }
}

TEST(FileSink, CreatesParentDirectoriesAndAppendsWithMode0640) {
  TempDir dir;
  const std::string path = dir.file("a/b/c/out.log");
  const mode_t old_mask = ::umask(022);
  {
    Sinking s;
    s.open("path: " + path);
    s.write(*raw_batch({"one", "two"}));
    EXPECT_EQ(s.sink->flush(s.ctx).status, SinkStatus::kOk);
  }
  {
    Sinking s;
    s.open("{path: " + path + ", fsync: never}");
    s.write(*raw_batch({"three"}));
  }
  ::umask(old_mask);
  EXPECT_EQ(read_file(path), "one\ntwo\nthree\n");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(FileSink, EmptyBatchWritesNothing) {
  TempDir dir;
  const std::string path = dir.file("out.log");
  Sinking s;
  s.open("path: " + path);
  Batch empty;
  s.write(empty);
  EXPECT_EQ(read_file(path), "");
  EXPECT_EQ(s.ctx.count("bytes"), 0u);
}

// Rotation is checked against a model of the documented rule: before a batch, if the file is
// not empty and the batch would take it past rotate_size, the files shift by one.
TEST(FileSink, RotatesBySizeKeepingTheNewestFilesAndLosingNoLine) {
  for (int keep : {1, 3, 100}) {
    SCOPED_TRACE("rotate_keep=" + std::to_string(keep));
    TempDir dir;
    const std::string path = dir.file("out.log");
    Sinking s;
    s.open("{path: " + path + ", rotate_size: 4KiB, rotate_keep: " + std::to_string(keep) + "}");

    std::vector<std::vector<std::string>> files(1);  // model: files[0] is path, files[i] path.i
    uint64_t size = 0, rotations = 0, total_bytes = 0;
    int n = 0;
    for (int b = 0; b < 60; ++b) {
      std::vector<std::string> lines;
      uint64_t batch_bytes = 0;
      for (int i = 0; i < 1 + b % 13; ++i) {
        lines.push_back("line " + std::to_string(n++) + " " + std::string(40 + i * 7, 'x'));
        batch_bytes += lines.back().size() + 1;
      }
      if (size != 0 && size + batch_bytes > 4096) {
        files.insert(files.begin(), std::vector<std::string>{});
        if (files.size() > static_cast<size_t>(keep) + 1) files.pop_back();
        size = 0;
        ++rotations;
      }
      files[0].insert(files[0].end(), lines.begin(), lines.end());
      size += batch_bytes;
      total_bytes += batch_bytes;
      s.write(*raw_batch(lines));
    }
    ASSERT_GT(rotations, 5u);
    EXPECT_EQ(s.ctx.count("rotations"), rotations);
    EXPECT_EQ(s.ctx.count("bytes"), total_bytes);
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string name = i == 0 ? path : path + "." + std::to_string(i);
      EXPECT_EQ(lines_of(read_file(name)), files[i]) << name;
      if (i > 0) {
        EXPECT_LE(std::filesystem::file_size(name), 4096u) << name;
      }
    }
    EXPECT_FALSE(std::filesystem::exists(path + "." + std::to_string(files.size())));
    if (keep == 100) {  // nothing rotated away: every line written is in some file, in order
      std::vector<std::string> all;
      for (size_t i = files.size(); i-- > 0;) {
        auto part = lines_of(read_file(i == 0 ? path : path + "." + std::to_string(i)));
        all.insert(all.end(), part.begin(), part.end());
      }
      ASSERT_EQ(all.size(), static_cast<size_t>(n));
      for (int i = 0; i < n; ++i)
        EXPECT_EQ(all[i].substr(0, all[i].find(' ', 5)), "line " + std::to_string(i));
    }
  }
}

TEST(FileSink, ABatchLargerThanRotateSizeGoesWholeIntoAFreshFile) {
  TempDir dir;
  const std::string path = dir.file("out.log");
  Sinking s;
  s.open("{path: " + path + ", rotate_size: 4096}");
  s.write(*raw_batch({"small"}));
  std::vector<std::string> big(100, std::string(99, 'b'));
  s.write(*raw_batch(big));
  EXPECT_EQ(read_file(path + ".1"), "small\n");
  EXPECT_EQ(lines_of(read_file(path)), big);
  EXPECT_EQ(s.ctx.count("rotations"), 1u);
}

TEST(FileSink, RotateSizeMustBeZeroOrAtLeast4KiB) {
  for (const char* bad : {"1", "1000", "4095"}) {
    CollectingDiagnostics diag;
    FileSink sink(parse_options(std::string("{path: /tmp/x, rotate_size: ") + bad + "}"), diag);
    ASSERT_EQ(diag.errors.size(), 1u) << bad;
    EXPECT_EQ(diag.errors[0].first, "rotate_size");
  }
  for (const char* good : {"0", "4KiB", "4096", "1GiB"}) {
    CollectingDiagnostics diag;
    FileSink sink(parse_options(std::string("{path: /tmp/x, rotate_size: ") + good + "}"), diag);
    EXPECT_TRUE(diag.errors.empty()) << good;
  }
  std::vector<config::Error> errors;
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "{path: /x, rotate_keep: 0}", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "{path: /x, fsync: always}", errors));
}

TEST(FileSink, ReopenAfterTheFileWasRenamedAwayWritesToANewFile) {
  TempDir dir;
  const std::string path = dir.file("out.log");
  Sinking s;
  s.open("path: " + path);
  s.write(*raw_batch({"before-1", "before-2"}));
  std::filesystem::rename(path, path + ".old");
  s.write(*raw_batch({"still-old"}));  // until reopen(), the open file is the renamed one
  s.sink->reopen(s.ctx);
  s.write(*raw_batch({"after"}));
  EXPECT_EQ(read_file(path + ".old"), "before-1\nbefore-2\nstill-old\n");
  EXPECT_EQ(read_file(path), "after\n");
}

TEST(FileSink, ReopenWhileWritingLosesNoLine) {
  TempDir dir;
  const std::string path = dir.file("out.log");
  Sinking s;
  s.open("{path: " + path + ", fsync: never}");
  constexpr int kRenames = 30;
  std::atomic<bool> renamed_all{false};
  int batches = 0;
  std::thread writer([&] {
    // At least a few batches after the last rename too.
    for (int after = 0; after < 10; after += renamed_all ? 1 : 0, ++batches)
      // fmt rather than "a" + std::to_string(): GCC 12 at -O3 warns falsely (-Wrestrict) there.
      s.write(*raw_batch({fmt::format("a{}", batches), fmt::format("b{}", batches)}));
  });
  for (int i = 0; i < kRenames; ++i) {
    std::filesystem::rename(path, path + "." + std::to_string(i));
    s.sink->reopen(s.ctx);
  }
  renamed_all = true;
  writer.join();
  size_t lines = lines_of(read_file(path)).size();
  for (int i = 0; i < kRenames; ++i) {
    auto part = lines_of(read_file(path + "." + std::to_string(i)));
    ASSERT_EQ(part.size() % 2, 0u);  // batches are never split
    lines += part.size();
  }
  EXPECT_EQ(lines, 2u * static_cast<size_t>(batches));
}

TEST(FileSink, WriteErrorsAreRetryable) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  FakeContext ctx;
  CollectingDiagnostics diag;
  FileSink sink(parse_options("{path: /dev/full, fsync: never}"), diag);
  ASSERT_TRUE(sink.start(ctx));
  SinkResult r = sink.write(ctx, *raw_batch({"x"}));
  EXPECT_EQ(r.status, SinkStatus::kRetryable);
  EXPECT_NE(r.error.find("/dev/full"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("No space"), std::string::npos) << r.error;
}

TEST(FileSink, StartFailsWhenTheDirectoryCannotBeCreated) {
  TempDir dir;
  std::ofstream(dir.file("plain")) << "a file, not a directory";
  FakeContext ctx;
  CollectingDiagnostics diag;
  FileSink sink(parse_options("path: " + dir.file("plain/sub/out.log")), diag);
  EXPECT_FALSE(sink.start(ctx));
  ASSERT_FALSE(ctx.logs.empty());
  EXPECT_EQ(ctx.logs.back().first, LogLevel::kError);
}

}  // namespace
}  // namespace ingestd::plugins

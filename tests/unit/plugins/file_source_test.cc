#include "source/file/file_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "config/config.h"
#include "fake_context.h"
#include "ingestd/plugin.h"
#include "plugin_test_support.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::CollectingOutput;
using ingestd::testing::FakeContext;

constexpr ComponentDescriptor kDescriptor =
    describe<FileSource>(Kind::kSource, "file", kFileSourceDoc, kFileSourceOptions);

// With a short checkpoint_interval unless the test sets one: a run waits that long at its end for
// the acks of batches that CollectingOutput holds unacknowledged.
Options parse_options(std::string yaml) {
  if (yaml.find("checkpoint_interval") == std::string::npos)
    yaml = yaml.starts_with("{") ? "{checkpoint_interval: 10ms, " + yaml.substr(1)
                                 : yaml + "\ncheckpoint_interval: 10ms";
  return ingestd::testing::options_or_fail(kDescriptor, yaml);
}

using ingestd::testing::TempDir;

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

void append_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::app) << content;
}

std::vector<std::string> texts(const std::vector<BatchPtr>& batches) {
  std::vector<std::string> out;
  for (const auto& b : batches)
    for (const Event& e : b->events()) out.emplace_back(e.raw);
  return out;
}

// What read mode must produce for `content`, computed line by line without the source's
// chunking: the kept lines and the counts of empty and oversized ones.
struct Expected {
  std::vector<std::string> events;
  uint64_t empty = 0;
  uint64_t oversized = 0;
};

Expected expected_lines(const std::string& content, size_t max_line, bool final_line_counts) {
  Expected x;
  size_t start = 0;
  while (start < content.size()) {
    size_t nl = content.find('\n', start);
    if (nl == std::string::npos && !final_line_counts) break;
    size_t end = nl == std::string::npos ? content.size() : nl;
    std::string line = content.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > max_line)
      ++x.oversized;
    else if (line.empty())
      ++x.empty;
    else
      x.events.push_back(line);
    start = nl == std::string::npos ? content.size() : nl + 1;
  }
  return x;
}

struct Reading {
  FakeContext ctx{"lines"};
  CollectingOutput out;
  std::unique_ptr<FileSource> source;

  // Reads `path` in read mode with the given extra options; false when start() fails.
  bool read(const std::string& yaml) {
    CollectingDiagnostics diag;
    source = std::make_unique<FileSource>(parse_options(yaml), diag);
    EXPECT_TRUE(diag.errors.empty());
    if (!source->start(ctx)) return false;
    source->run(ctx, out);
    return true;
  }
};

TEST(FileSource, ReadsLinesWithIngestTimeAndOrigin) {
  TempDir dir;
  const std::string path = dir.file("in.log");
  write_file(path, "alpha\nbeta\ngamma\n");
  Reading r;
  ASSERT_TRUE(r.read("path: " + path));
  EXPECT_EQ(texts(r.out.batches), (std::vector<std::string>{"alpha", "beta", "gamma"}));
  ASSERT_EQ(r.out.batches.size(), 1u);
  const Batch& b = *r.out.batches[0];
  EXPECT_EQ(b.origin.component, "lines");
  EXPECT_EQ(b.origin.offset, 0);
  EXPECT_EQ(b.ingest_time_ns, r.ctx.clock().now_ns());
  for (const Event& e : b.events()) EXPECT_EQ(e.time_ns, b.ingest_time_ns);
  EXPECT_EQ(r.ctx.count("events"), 3u);
  EXPECT_EQ(r.ctx.count("bytes"), 17u);
  EXPECT_EQ(r.ctx.count("empty"), 0u);
  EXPECT_EQ(r.ctx.count("oversized"), 0u);
}

TEST(FileSource, StripsCarriageReturnsSkipsEmptyLinesAndKeepsAnUnterminatedLastLine) {
  TempDir dir;
  const std::string path = dir.file("in.log");
  const std::string content = "one\r\n\r\n\ntwo\r\n \nlast";
  write_file(path, content);
  Reading r;
  ASSERT_TRUE(r.read("path: " + path));
  EXPECT_EQ(texts(r.out.batches), (std::vector<std::string>{"one", "two", " ", "last"}));
  EXPECT_EQ(r.ctx.count("events"), 4u);
  EXPECT_EQ(r.ctx.count("empty"), 2u);
  EXPECT_EQ(r.ctx.count("bytes"), content.size());
}

TEST(FileSource, DropsAndCountsOversizedLines) {
  TempDir dir;
  const std::string path = dir.file("in.log");
  const std::string content = "short\n" + std::string(17, 'x') + "\n" + std::string(16, 'y') +
                              "\n" + std::string(16, 'w') + "\r\n" + std::string(300, 'z') + "\n" +
                              std::string(17, 'v') + "\r\nend\n" + std::string(40, 'q');
  write_file(path, content);
  Reading r;
  r.ctx.limits.max_bytes = 8;  // chunks of 8 bytes: the long lines span many of them
  ASSERT_TRUE(r.read("{path: " + path + ", max_line: 16}"));
  EXPECT_EQ(texts(r.out.batches),
            (std::vector<std::string>{"short", std::string(16, 'y'), std::string(16, 'w'), "end"}));
  EXPECT_EQ(r.ctx.count("oversized"), 4u);
  EXPECT_EQ(r.ctx.count("events"), 4u);
  EXPECT_EQ(r.ctx.count("bytes"), content.size());
}

TEST(FileSource, SplitsBatchesAtMaxEvents) {
  TempDir dir;
  const std::string path = dir.file("in.log");
  std::string content;
  for (int i = 0; i < 10; ++i) content += "line" + std::to_string(i) + "\n";
  write_file(path, content);
  Reading r;
  r.ctx.limits.max_events = 3;
  ASSERT_TRUE(r.read("path: " + path));
  std::vector<size_t> sizes;
  for (const auto& b : r.out.batches) sizes.push_back(b->size());
  EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 3, 1}));
  // Each batch starts where the previous one's lines end: 6 bytes per line.
  for (size_t i = 0; i < r.out.batches.size(); ++i)
    EXPECT_EQ(r.out.batches[i]->origin.offset, static_cast<int64_t>(i * 3 * 6));
  EXPECT_EQ(texts(r.out.batches), expected_lines(content, 1 << 20, true).events);
}

TEST(FileSource, LinesStraddlingChunksAndBatchesMatchALineByLineSplit) {
  TempDir dir;
  const std::string path = dir.file("in.log");
  // Lines of many lengths, with CRLF, empty and oversized ones, and no final newline.
  std::string content;
  for (int i = 0; i < 400; ++i) {
    int len = (i * 37) % 53;
    if (i % 11 == 0) len = 0;
    content += std::string(static_cast<size_t>(len), static_cast<char>('a' + i % 26));
    content += i % 7 == 0 ? "\r\n" : "\n";
  }
  content += "tail-without-newline";
  write_file(path, content);
  const Expected want = expected_lines(content, 40, true);
  ASSERT_GT(want.oversized, 0u);
  ASSERT_GT(want.empty, 0u);

  for (size_t max_bytes : {1, 2, 3, 7, 16, 41, 64, 100, 4096, 1 << 20}) {
    SCOPED_TRACE("max_bytes=" + std::to_string(max_bytes));
    Reading r;
    r.ctx.limits.max_bytes = max_bytes;
    ASSERT_TRUE(r.read("{path: " + path + ", max_line: 40}"));
    EXPECT_EQ(texts(r.out.batches), want.events);
    EXPECT_EQ(r.ctx.count("events"), want.events.size());
    EXPECT_EQ(r.ctx.count("empty"), want.empty);
    EXPECT_EQ(r.ctx.count("oversized"), want.oversized);
    EXPECT_EQ(r.ctx.count("bytes"), content.size());
    // A batch is pushed as soon as it reaches max_bytes, not later.
    for (size_t i = 0; i + 1 < r.out.batches.size(); ++i) {
      const Batch& b = *r.out.batches[i];
      EXPECT_GE(b.raw_bytes(), max_bytes);
      EXPECT_LT(b.raw_bytes() - b.events().back().raw.size(), max_bytes);
    }
  }
}

TEST(FileSource, EmptyFileProducesNothing) {
  TempDir dir;
  const std::string path = dir.file("empty.log");
  write_file(path, "");
  Reading r;
  ASSERT_TRUE(r.read("path: " + path));
  EXPECT_TRUE(r.out.batches.empty());
  EXPECT_EQ(r.ctx.count("bytes"), 0u);
}

TEST(FileSource, ReadModeFailsToStartOnAMissingFile) {
  TempDir dir;
  Reading r;
  EXPECT_FALSE(r.read("path: " + dir.file("missing.log")));
  ASSERT_FALSE(r.ctx.logs.empty());
  EXPECT_EQ(r.ctx.logs.back().first, LogLevel::kError);
  EXPECT_NE(r.ctx.logs.back().second.find("missing.log"), std::string::npos);
}

TEST(FileSource, OptionErrors) {
  CollectingDiagnostics diag;
  FileSource source(parse_options("{path: /x, start_at: end}"), diag);
  ASSERT_EQ(diag.errors.size(), 1u);
  EXPECT_EQ(diag.errors[0].first, "start_at");

  std::vector<config::Error> errors;
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "{path: /x, max_line: 8}", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "{mode: read}", errors));
}

// Runs follow mode deterministically on the test's thread: every wait_for_stop() (the source
// waits only at the end of the file) runs the next step, which may change the file, and advances
// the fake clock; once the steps are done the pipeline stops.
class ScriptedContext : public FakeContext {
 public:
  ScriptedContext() : FakeContext("tail") {}
  bool wait_for_stop(int64_t timeout_ns) override {
    ++waits;
    if (steps.empty()) {
      request_stop();
      return true;
    }
    auto step = std::move(steps.front());
    steps.pop_front();
    step();
    return FakeContext::wait_for_stop(timeout_ns);
  }

  std::deque<std::function<void()>> steps;
  int waits = 0;
};

struct Following {
  ScriptedContext ctx;
  CollectingOutput out;
  std::unique_ptr<FileSource> source;

  void run(const std::string& yaml) {
    CollectingDiagnostics diag;
    source = std::make_unique<FileSource>(parse_options("{mode: follow, " + yaml + "}"), diag);
    ASSERT_TRUE(diag.errors.empty());
    ASSERT_TRUE(source->start(ctx));
    source->run(ctx, out);
  }
};

TEST(FileSource, FollowReadsAppendedLinesAndWaitsForTheNewline) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  write_file(path, "a\n");
  Following f;
  std::vector<std::string> seen_after_partial;
  f.ctx.steps = {
      [&] { append_file(path, "b\nc"); },
      [&] {
        seen_after_partial = texts(f.out.batches);
        append_file(path, "c\n");
      },
      [] {},
  };
  f.run("path: " + path);
  EXPECT_EQ(seen_after_partial, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(texts(f.out.batches), (std::vector<std::string>{"a", "b", "cc"}));
  EXPECT_EQ(f.out.batches.size(), 3u);  // one per end of file reached with new lines
  EXPECT_EQ(f.ctx.count("bytes"), 7u);
  EXPECT_EQ(f.ctx.count("reopened"), 0u);
  EXPECT_EQ(f.ctx.waits, 4);  // the source waits only at the end of the file
}

TEST(FileSource, FollowLeavesAnUnterminatedTailUncounted) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  write_file(path, "x\ny\npartial");
  Following f;
  f.run("path: " + path);
  EXPECT_EQ(texts(f.out.batches), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(f.ctx.count("bytes"), 4u);
}

TEST(FileSource, FollowStartAtEndSkipsExistingContent) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  write_file(path, "old1\nold2\n");
  Following f;
  f.ctx.steps = {[&] { append_file(path, "new\n"); }};
  f.run("path: " + path + ", start_at: end");
  EXPECT_EQ(texts(f.out.batches), (std::vector<std::string>{"new"}));
  EXPECT_EQ(f.out.batches[0]->origin.offset, 10);
}

TEST(FileSource, FollowReopensARotatedFileAfterReadingTheOldOneToItsEnd) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  write_file(path, "1\n2\n");
  Following f;
  f.ctx.steps = {
      [&] {
        std::filesystem::rename(path, path + ".1");
        append_file(path + ".1", "3\n4");  // the writer still had the old file open
        write_file(path, "5\n");
      },
      [&] { append_file(path, "6\n"); },
  };
  f.run("path: " + path);
  EXPECT_EQ(texts(f.out.batches), (std::vector<std::string>{"1", "2", "3", "4", "5", "6"}));
  EXPECT_EQ(f.ctx.count("reopened"), 1u);
  EXPECT_EQ(f.ctx.count("events"), 6u);
}

TEST(FileSource, FollowRestartsATruncatedFile) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  write_file(path, "aaa\nbbb\n");
  Following f;
  f.ctx.steps = {[&] { write_file(path, "c\n"); }, [] {}};
  f.run("path: " + path);
  EXPECT_EQ(texts(f.out.batches), (std::vector<std::string>{"aaa", "bbb", "c"}));
  EXPECT_EQ(f.ctx.count("reopened"), 1u);
}

TEST(FileSource, FollowWaitsForADeletedFileToBeRecreated) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  write_file(path, "a\n");
  Following f;
  f.ctx.steps = {[&] { std::filesystem::remove(path); }, [] {}, [&] { write_file(path, "b\n"); }};
  f.run("path: " + path);
  EXPECT_EQ(texts(f.out.batches), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f.ctx.count("reopened"), 1u);
}

TEST(FileSource, FollowWaitsForAFileThatDoesNotExistYet) {
  TempDir dir;
  const std::string path = dir.file("later.log");
  Following f;
  f.ctx.steps = {[] {}, [&] { write_file(path, "hello\n"); }};
  f.run("path: " + path);
  EXPECT_EQ(texts(f.out.batches), (std::vector<std::string>{"hello"}));
  ASSERT_FALSE(f.ctx.logs.empty());
  EXPECT_EQ(f.ctx.logs.front().first, LogLevel::kWarn);
  EXPECT_EQ(f.ctx.count("reopened"), 0u);
}

// The real thing: run() on its own thread while the test appends, waiting on a condition with a
// deadline. wait_for_stop() advances the fake clock and yields instead of sleeping.
class ThreadedContext : public FakeContext {
 public:
  bool stopping() const override { return stop_.load(); }
  bool wait_for_stop(int64_t) override {
    std::this_thread::yield();
    return stop_.load();
  }
  void stop() { stop_.store(true); }

 private:
  std::atomic<bool> stop_{false};
};

class WaitableOutput : public Output {
 public:
  bool push(BatchPtr batch) override {
    std::lock_guard lock(mu_);
    for (const Event& e : batch->events()) lines_.emplace_back(e.raw);
    cv_.notify_all();
    return true;
  }
  PushResult try_push(BatchPtr& batch) override {
    push(std::move(batch));
    return PushResult::kOk;
  }
  bool wait_writable(int64_t) override { return true; }
  bool wait_for(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return lines_.size() >= n; });
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

TEST(FileSource, FollowOnAThreadSeesLinesAppendedWhileItRuns) {
  TempDir dir;
  const std::string path = dir.file("live.log");
  write_file(path, "first\n");
  ThreadedContext ctx;
  WaitableOutput out;
  CollectingDiagnostics diag;
  FileSource source(parse_options("{mode: follow, path: " + path + "}"), diag);
  ASSERT_TRUE(source.start(ctx));
  std::thread runner([&] { source.run(ctx, out); });
  std::vector<std::string> want{"first"};
  bool seen = out.wait_for(1);
  for (int i = 0; i < 50 && seen; ++i) {
    append_file(path, "line " + std::to_string(i) + "\n");
    want.push_back("line " + std::to_string(i));
    seen = out.wait_for(want.size());
  }
  ctx.stop();
  runner.join();
  ASSERT_TRUE(seen);
  EXPECT_EQ(out.lines(), want);
}

// Checkpoints: each run is a fresh source and context sharing one state directory, as a restart.
struct Restart {
  std::vector<std::string> lines;
  std::vector<std::pair<LogLevel, std::string>> logs;
  uint64_t acks_failed = 0;

  bool logged(std::string_view text) const {
    for (const auto& [level, message] : logs)
      if (message.find(text) != std::string::npos) return true;
    return false;
  }
};

Restart run_once(const std::string& state_root, const std::string& yaml, bool ack = true,
                 std::function<void()> step = {}) {
  ScriptedContext ctx;
  ctx.state_root = state_root;
  if (step) ctx.steps.push_back(std::move(step));
  CollectingOutput out;
  CollectingDiagnostics diag;
  Restart r;
  {
    FileSource source(parse_options(yaml), diag);
    EXPECT_TRUE(diag.errors.empty());
    if (!source.start(ctx)) {
      r.logs = ctx.logs;
      return r;
    }
    source.run(ctx, out);
    // Acks that come back after run() returned, as from an aggregator that flushes at the end.
    for (auto& b : out.batches) b->resolve_acks(ack);
  }
  r.lines = texts(out.batches);
  r.logs = ctx.logs;
  r.acks_failed = ctx.count("acks_failed");
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

using Lines = std::vector<std::string>;

TEST(FileSourceCheckpoint, ReadModeResumesAfterTheLastAcknowledgedLine) {
  TempDir dir;
  const std::string path = dir.file("in.log");
  const std::string state = dir.file("state");
  write_file(path, "a\nb\n");
  EXPECT_EQ(run_once(state, "path: " + path).lines, (Lines{"a", "b"}));
  std::string error;
  auto saved = read_checkpoint(state + "/tail/checkpoint.json", error);
  ASSERT_TRUE(saved) << error;
  EXPECT_EQ(saved->path, path);
  EXPECT_EQ(saved->offset, 4u);

  append_file(path, "c\n");
  Restart second = run_once(state, "path: " + path);
  EXPECT_EQ(second.lines, (Lines{"c"}));
  EXPECT_TRUE(second.logged("resuming " + path + " at byte 4"));
  // The batch job ran to the end: running it again reads nothing new.
  EXPECT_EQ(run_once(state, "path: " + path).lines, Lines{});
  // Without checkpoints it reads everything, and leaves the checkpoint as it was.
  EXPECT_EQ(run_once(state, "{path: " + path + ", checkpoint: false}").lines,
            (Lines{"a", "b", "c"}));
  EXPECT_EQ(read_checkpoint(state + "/tail/checkpoint.json", error)->offset, 6u);
}

TEST(FileSourceCheckpoint, FailedAcksAreReadAgainAfterARestart) {
  TempDir dir;
  const std::string path = dir.file("in.log");
  const std::string state = dir.file("state");
  write_file(path, "a\nb\n");
  Restart first = run_once(state, "path: " + path, /*ack=*/false);
  EXPECT_EQ(first.acks_failed, 1u);
  EXPECT_EQ(run_once(state, "path: " + path).lines, (Lines{"a", "b"}));
}

TEST(FileSourceCheckpoint, FollowModeResumesAndIgnoresStartAtWithACheckpoint) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  const std::string state = dir.file("state");
  write_file(path, "a\nb\n");
  EXPECT_EQ(run_once(state, "{mode: follow, path: " + path + "}").lines, (Lines{"a", "b"}));
  append_file(path, "c\n");
  EXPECT_EQ(run_once(state, "{mode: follow, start_at: end, path: " + path + "}").lines,
            (Lines{"c"}));
}

TEST(FileSourceCheckpoint, RotatedWhileStoppedReadsTheRestOfPathDot1ThenTheNewFile) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  const std::string state = dir.file("state");
  write_file(path, "1\n2\n");
  EXPECT_EQ(run_once(state, "{mode: follow, path: " + path + "}").lines, (Lines{"1", "2"}));
  append_file(path, "3\n");
  std::filesystem::rename(path, path + ".1");
  write_file(path, "4\n");
  Restart second = run_once(state, "{mode: follow, path: " + path + "}");
  EXPECT_EQ(second.lines, (Lines{"3", "4"}));
  EXPECT_TRUE(second.logged("rotated while stopped"));
  // The checkpoint now follows the new file.
  EXPECT_EQ(run_once(state, "{mode: follow, path: " + path + "}").lines, Lines{});

  // Read mode does the same.
  append_file(path, "5\n");
  std::filesystem::rename(path, path + ".1");
  write_file(path, "6\n");
  EXPECT_EQ(run_once(state, "path: " + path).lines, (Lines{"5", "6"}));
}

TEST(FileSourceCheckpoint, RotatedWhileStoppedWithoutPathDot1ReadsTheNewFileFromItsBeginning) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  const std::string state = dir.file("state");
  write_file(path, "1\n2\n");
  EXPECT_EQ(run_once(state, "{mode: follow, path: " + path + "}").lines, (Lines{"1", "2"}));
  std::filesystem::rename(path, path + ".old");
  write_file(path, "3\n4\n5\n");  // longer than the checkpoint's offset: still read whole
  Restart second = run_once(state, "{mode: follow, start_at: end, path: " + path + "}");
  EXPECT_EQ(second.lines, (Lines{"3", "4", "5"}));
  EXPECT_TRUE(second.logged("rotated while stopped"));
}

TEST(FileSourceCheckpoint, TruncatedWhileStoppedReadsFromTheBeginning) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  const std::string state = dir.file("state");
  write_file(path, "aaa\nbbb\n");
  EXPECT_EQ(run_once(state, "{mode: follow, path: " + path + "}").lines, (Lines{"aaa", "bbb"}));
  write_file(path, "c\n");  // same inode, shorter
  Restart second = run_once(state, "{mode: follow, path: " + path + "}");
  EXPECT_EQ(second.lines, (Lines{"c"}));
  EXPECT_TRUE(second.logged("truncated while stopped"));
}

TEST(FileSourceCheckpoint, RotationWhileRunningMovesTheCheckpointToTheNewFile) {
  TempDir dir;
  const std::string path = dir.file("app.log");
  const std::string state = dir.file("state");
  write_file(path, "1\n");
  Restart first = run_once(state, "{mode: follow, path: " + path + "}", true, [&] {
    std::filesystem::rename(path, path + ".1");
    write_file(path, "2\n");
  });
  EXPECT_EQ(first.lines, (Lines{"1", "2"}));
  std::string error;
  auto saved = read_checkpoint(state + "/tail/checkpoint.json", error);
  ASSERT_TRUE(saved) << error;
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(saved->ino, st.st_ino);
  EXPECT_EQ(saved->offset, 2u);
  append_file(path, "3\n");
  EXPECT_EQ(run_once(state, "{mode: follow, path: " + path + "}").lines, (Lines{"3"}));
}

TEST(FileSourceCheckpoint, ADamagedCheckpointIsReportedAndIgnored) {
  TempDir dir;
  const std::string path = dir.file("in.log");
  const std::string state = dir.file("state");
  write_file(path, "a\n");
  std::filesystem::create_directories(state + "/tail");
  write_file(state + "/tail/checkpoint.json", "{\"path\": \"" + path + "\", \"dev\": ");
  Restart r = run_once(state, "path: " + path);
  EXPECT_EQ(r.lines, (Lines{"a"}));
  EXPECT_TRUE(r.logged("damaged checkpoint"));
  EXPECT_NE(read_text(state + "/tail/checkpoint.json").find("\"offset\":2"), std::string::npos);
}

TEST(FileSourceCheckpoint, StartFailsWhenTheStateDirectoryCannotBeMade) {
  TempDir dir;
  const std::string path = dir.file("in.log");
  write_file(path, "a\n");
  write_file(dir.file("blocker"), "");  // a file where a directory must go
  Restart r = run_once(dir.file("blocker"), "path: " + path);
  EXPECT_TRUE(r.lines.empty());
  EXPECT_TRUE(r.logged("checkpoint: false"));
}

}  // namespace
}  // namespace ingestd::plugins

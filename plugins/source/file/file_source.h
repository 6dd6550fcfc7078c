// source/file: newline-delimited records from one file, read once or followed like `tail -F`.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "checkpoint.h"
#include "ingestd/component.h"
#include "ingestd/schema.h"

namespace ingestd::plugins {

inline constexpr const char* kFileSourceDoc =
    "Reads a file line by line, one event per line (raw bytes, ingest time). `mode: read` reads "
    "it once and ends; `mode: follow` keeps reading what is appended, like `tail -F`.";

inline constexpr OptionSpec kFileSourceOptions[] = {
    {.name = "path", .type = OptionType::kString, .required = true, .doc = "File to read."},
    {.name = "mode",
     .type = OptionType::kEnum,
     .default_value = "read",
     .choices = "read|follow",
     .doc = "`read`: read from the start to the end of the file, then finish (a batch job). "
            "`follow`: keep reading appended lines until shutdown; reopen the path when the file "
            "is replaced (rotation) or truncated; wait for it when it does not exist yet."},
    {.name = "poll_interval",
     .type = OptionType::kDuration,
     .default_value = "200ms",
     .min = "1ms",
     .doc = "Follow mode: how often to look for new data and for rotation at the end of the "
            "file."},
    {.name = "start_at",
     .type = OptionType::kEnum,
     .default_value = "beginning",
     .choices = "beginning|end",
     .doc = "Follow mode: where to start in the file that exists at start-up when there is no "
            "usable checkpoint. A file that appears or replaces it later is always read from "
            "its beginning."},
    {.name = "checkpoint",
     .type = OptionType::kBool,
     .default_value = "true",
     .doc = "Keep the position of the last acknowledged line in `data_dir/state/<component>/"
            "checkpoint.json` and resume there after a restart (both modes; `start_at` applies "
            "only without a usable checkpoint). A read-mode job that finished records the end of "
            "the file, so running it again reads only what was appended since: delete the file, "
            "or set `checkpoint: false`, to read it all again."},
    {.name = "checkpoint_interval",
     .type = OptionType::kDuration,
     .default_value = "1s",
     .min = "10ms",
     .doc = "How often at most the checkpoint is written while running (after a crash, at most "
            "about this much acknowledged data is read again). At stop the source waits up to "
            "this long (at most 1s) for the acks of what it read, then writes it."},
    {.name = "max_line",
     .type = OptionType::kSize,
     .default_value = "1MiB",
     .min = "16",
     .doc = "Longest line kept, without its line ending. Longer lines are skipped and counted "
            "as `oversized`."},
};

// Reads newline-delimited records from one file.
//
// Every '\n'-terminated line becomes one event whose raw bytes are the line without "\n" or
// "\r\n" and whose time is the ingest time. Lines are read in chunks into buffers that the
// batches whose events point into them keep alive (Batch::keep_alive), so consecutive batches
// share a chunk and no line is copied but one cut by the end of a chunk. Empty lines and lines
// longer than max_line are skipped and counted (`empty`, `oversized`). A batch is pushed when it
// reaches the batch limits and whenever the end of the file is reached, so a slow file still flows.
// Batches carry the file offset of their first line in origin.offset.
//
// Read mode ends run() at the end of the file; a last line without '\n' is a record too. Follow
// mode polls at the end of the file every poll_interval (with ctx.wait_for_stop()), reopens the
// path when it names another file (its old file is read to its end first, and its unterminated
// last line is a record) or when the file shrank below the read position, and returns once
// ctx.stopping(); an unterminated last line waits for its newline.
//
// Counters: events, bytes (of all consumed lines with their line endings in this run: after
// run() returns in read mode, with no checkpoint to resume from, it is the offset just past the
// last consumed line), empty, oversized, reopened,
// acks_failed, checkpoint_errors.
// Failure modes: read mode fails start() when the file cannot be opened; follow mode then
// warns and retries every poll_interval. Read errors end read mode and make follow mode reopen.
//
// Checkpoints (`checkpoint: true`, the default). Each pushed batch carries an AckRef for its byte
// range [start, end) of the file (dev, ino) it came from; opening a file adds an empty range at
// the position it starts from, and lines skipped without events an empty range too. A
// CheckpointTracker turns the acks, which may come back in any order, into the contiguous
// acknowledged prefix; the first failed ack stops it there for this run (counted in
// `acks_failed`, logged once), so that a restart reads that batch and what followed again. The
// position {path, dev, ino, offset} is written atomically to state_dir()/checkpoint.json:
// - while running, from run()'s thread, when it moved and checkpoint_interval has passed (checked
//   after each push and at every poll);
// - at the end of run(): the runtime ends a source first and drains the rest of the graph after,
//   but sinks keep taking batches while run() is still in it, so run() waits up to
//   checkpoint_interval (at most 1 s) for the acks of everything it pushed and writes the
//   position then;
// - after run(): acks that come back later (an aggregator holds them until it flushes, which it
//   does only once this source has ended; a sink retrying) are written from the ack callback,
//   on the sink's thread, once none is left unresolved, and the destructor writes whatever moved
//   since (the core destroys a source after the graph has stopped, or for a reload once the
//   source ended). These late writes cannot log (the Context may be gone); they count
//   `checkpoint_errors`.
// The shared state lives behind a shared_ptr held by the callbacks, so they stay safe after the
// source is destroyed. A kill -9 re-reads at most what was acknowledged since the last write.
//
// On start, a checkpoint for `path` resumes there when the path still names that file (same
// dev/ino) and it is at least that long. Another file at the path (rotated while stopped): the
// rest of the old file is read first if it is still at `path.1` (the usual rotated name) with the
// checkpoint's dev/ino, then the new file from its beginning. A shorter file (truncated while
// stopped): from the beginning. Each case is logged; an unreadable or damaged checkpoint is
// logged and ignored (the next write replaces it). start() fails when state_dir() cannot be made.
//
// Threading: start() and run() run on the source's thread; nothing else is called concurrently,
// except ack callbacks, which only touch the shared checkpoint state under its mutex.
class FileSource final : public Source {
 public:
  FileSource(const Options& options, Diagnostics& diag);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  bool start(Context& ctx) override;
  void run(Context& ctx, Output& out) override;

 private:
  enum class Step { kEndOfFile, kError, kStop };

  struct Checkpoints;

  int open_file(const std::string& path, bool at_end);  // 0 or an errno value
  bool apply_checkpoint(Context& ctx, const FilePosition& saved);
  void mark_opened();  // an empty range at the position a file is opened at
  void save_checkpoint(Context& ctx, bool now);
  void finish_checkpoints(Context& ctx);
  void close_file();
  Step read_available(Context& ctx, Output& out);
  ssize_t fill(Context& ctx);
  BatchPtr new_batch() const;
  void make_room();
  bool scan();  // true when the batch is full
  void take_line(std::string_view line, size_t consumed);
  void skip_line(uint64_t consumed);
  void take_tail();
  bool full() const;
  bool push(Context& ctx, Output& out);
  void drop_unconsumed();
  bool reopen_if_changed(Context& ctx, Output& out, bool& stop);
  void run_read(Context& ctx, Output& out);
  bool switch_to_path(Context& ctx);
  void run_follow(Context& ctx, Output& out);

  std::string path_;
  bool follow_;
  bool start_at_end_;
  int64_t poll_interval_ns_;
  size_t max_line_;
  bool checkpoint_;
  int64_t checkpoint_interval_ns_;

  BatchLimits limits_;
  size_t read_size_ = 0;
  size_t memory_cap_ = 0;

  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  uint64_t read_offset_ = 0;      // file offset of the next byte read()
  uint64_t consumed_offset_ = 0;  // file offset just past the last consumed line
  int last_error_ = 0;            // last open/read errno reported, to log each failure once
  bool reading_rotated_ = false;  // fd_ is the rotated `path.1`, read before the file at path_

  std::shared_ptr<Checkpoints> checkpoints_;  // null with `checkpoint: false`
  int64_t last_save_ns_ = 0;
  std::string last_checkpoint_error_;  // to log each write failure once

  BatchPtr batch_;
  uint64_t batch_offset_ = 0;
  std::shared_ptr<char[]> chunk_owner_;
  char* chunk_ = nullptr;  // chunk_owner_'s bytes [pos_, len_) are read but not consumed
  size_t cap_ = 0;
  size_t len_ = 0;
  size_t pos_ = 0;
  bool chunk_referenced_ = false;  // an event of some batch points into chunk_
  bool chunk_attached_ = false;    // batch_ keeps chunk_ alive
  bool skipping_ = false;          // inside an oversized line, up to its '\n'
  uint64_t skipped_ = 0;
  int64_t read_time_ns_ = 0;

  uint64_t pending_bytes_ = 0;  // consumed since the last push, counted when it is pushed
  uint64_t pending_empty_ = 0;
  uint64_t pending_oversized_ = 0;

  Counter* events_ = nullptr;
  Counter* bytes_ = nullptr;
  Counter* empty_ = nullptr;
  Counter* oversized_ = nullptr;
  Counter* reopened_ = nullptr;
  Counter* acks_failed_ = nullptr;
  Counter* checkpoint_errors_ = nullptr;
};

}  // namespace ingestd::plugins

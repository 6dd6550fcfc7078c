// sink/file: one line per event appended to a file, with size-based rotation.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "ingestd/component.h"
#include "ingestd/json.h"
#include "ingestd/schema.h"

namespace ingestd::plugins {

inline constexpr const char* kFileSinkDoc =
    "Appends one line per event to a file (created with its parent directories), rotating it by "
    "size. SIGUSR1 reopens the path, for logrotate.";

inline constexpr OptionSpec kFileSinkOptions[] = {
    {.name = "path",
     .type = OptionType::kString,
     .required = true,
     .doc = "File to append to; missing parent directories are created (mode 0640 for the file)."},
    json::kEncodingOption,
    {.name = "rotate_size",
     .type = OptionType::kSize,
     .default_value = "0",
     .doc = "Rotate before a batch would make the file larger than this: path is renamed to "
            "path.1, path.1 to path.2 and so on. A batch is never split, so a file exceeds the "
            "size only by a batch written to an empty file. 0 (default) turns rotation off; "
            "otherwise at least 4KiB."},
    {.name = "rotate_keep",
     .type = OptionType::kInt,
     .default_value = "5",
     .min = "1",
     .doc = "Rotated files kept (path.1 ... path.N); the oldest is removed."},
    {.name = "fsync",
     .type = OptionType::kEnum,
     .default_value = "batch",
     .choices = "never|batch|interval",
     .doc = "When written data is forced to disk before a batch counts as delivered: `batch` "
            "after every batch (safest), `interval` at most every fsync_interval, `never` left to "
            "the kernel."},
    {.name = "fsync_interval",
     .type = OptionType::kDuration,
     .default_value = "1s",
     .min = "1ms",
     .doc = "With `fsync: interval`: the longest time written data may stay unsynced while "
            "batches arrive."},
};

// Appends each batch, encoded as lines, to one file with a single write().
//
// Contract:
// - start() creates the parent directories and opens the path (O_APPEND, mode 0640); it fails
//   when either fails. write() serializes the whole batch into a reused buffer and writes it at
//   once (looping on short writes); when a write fails, what it wrote is truncated away and the
//   result is retryable with the reason, so a retried batch is not duplicated.
// - Rotation: when the file is not empty and the batch would make it exceed rotate_size, path is
//   renamed to path.1 after shifting path.N-1 -> path.N ... path.1 -> path.2 (the oldest is
//   overwritten), then a new path is opened. The rotated file is synced first unless
//   `fsync: never`.
// - Durability: with `fsync: batch` a kOk result means the batch was fdatasync'ed; with
//   `interval` at most fsync_interval of data (by the context's monotonic clock) is unsynced;
//   flush() always syncs.
// - Threading: single-worker (one instance, write() and flush() on one thread); reopen() runs
//   on a control thread and is serialized with writes by a mutex.
// Counters: bytes (written), rotations.
class FileSink final : public Sink {
 public:
  FileSink(const Options& options, Diagnostics& diag);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  bool start(Context& ctx) override;
  void reopen(Context& ctx) override;
  SinkResult write(Context& ctx, const Batch& batch) override;
  SinkResult flush(Context& ctx) override;

 private:
  enum class Fsync { kNever, kBatch, kInterval };
  static Fsync fsync_from(const std::string& name);

  int open_file();  // 0 or an errno value; mu_ held
  void close_file();
  SinkResult rotate(Context& ctx);

  std::string path_;
  json::Encoding encoding_;
  uint64_t rotate_size_;
  int64_t rotate_keep_;
  Fsync fsync_;
  int64_t fsync_interval_ns_;

  std::mutex mu_;
  int fd_ = -1;
  uint64_t size_ = 0;  // of the open file
  int64_t last_sync_ns_ = 0;
  bool unsynced_ = false;
  std::string buffer_;
  Counter* bytes_ = nullptr;
  Counter* rotations_ = nullptr;
};

}  // namespace ingestd::plugins

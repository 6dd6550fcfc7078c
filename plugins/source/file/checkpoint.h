// source/file checkpoints: which bytes of which file are acknowledged, and the state file that
// keeps that position across restarts.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "shared/state/state_file.h"

namespace ingestd::plugins {

// A position in one file: everything before `offset` in the file (dev, ino), last seen at
// `path`, is acknowledged.
struct FilePosition {
  std::string path;
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t offset = 0;
  bool operator==(const FilePosition&) const = default;
};

// The contiguous acknowledged prefix of what a source read, in the order it read it.
//
// The source add()s each range it hands out (one per batch, in read order, across files: after a
// rotation the new file's ranges follow the old one's) and resolve()s it when its acknowledgement
// comes back, in any order. committed() is the end of the last range such that it and every
// range before it resolved ok: a restart from there loses nothing. A range that resolved failed
// stops committed() before it for good (its data must be read again after a restart); later
// ranges are then only counted. A zero-length range (a file opened at some offset, lines skipped
// without events) moves committed() once the ranges before it are acknowledged.
//
// Not thread-safe: the owner serializes add() and resolve(). Memory: one entry per range that is
// unresolved or follows an unresolved one; none once stopped by a failure.
class CheckpointTracker {
 public:
  explicit CheckpointTracker(std::string path, std::optional<FilePosition> start = {})
      : path_(std::move(path)), committed_(std::move(start)) {}

  // The range of file (dev, ino) ending at `end`; returns the ticket to resolve it with.
  uint64_t add(uint64_t dev, uint64_t ino, uint64_t end);
  // Resolves a ticket once; true when committed() moved. Unknown tickets are ignored.
  bool resolve(uint64_t ticket, bool ok);

  const std::optional<FilePosition>& committed() const { return committed_; }
  size_t unresolved() const { return unresolved_; }
  bool stopped_by_failure() const { return stopped_; }

 private:
  enum class State : uint8_t { kPending, kOk, kFailed };
  struct Range {
    uint64_t dev;
    uint64_t ino;
    uint64_t end;
    State state;
  };

  std::string path_;
  std::optional<FilePosition> committed_;
  std::deque<Range> ranges_;  // ranges_[i] has ticket first_ticket_ + i
  uint64_t first_ticket_ = 0;
  uint64_t next_ticket_ = 0;
  size_t unresolved_ = 0;
  bool stopped_ = false;
};

// The state file: one JSON object {"path", "dev", "ino", "offset"} and a newline.

// Reads `file`. Returns nullopt with error empty when it does not exist, and with error set when
// it cannot be read or is damaged (the caller reports it and starts without a checkpoint).
std::optional<FilePosition> read_checkpoint(const std::string& file, std::string& error);
// Replaces `file` atomically: a temporary file beside it, written and fsync'ed, renamed over it,
// then the directory fsync'ed. After a crash the file holds the old or the new position, whole.
// False with error set on failure (the old file is left as it was).
bool write_checkpoint(const std::string& file, const FilePosition& position, std::string& error);

}  // namespace ingestd::plugins

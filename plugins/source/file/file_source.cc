#include "file_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <utility>

namespace ingestd::plugins {

namespace {

constexpr size_t kMaxReadSize = 256 * 1024;
constexpr size_t kArenaBytes = 4 * 1024;  // a batch's own arena: the file's bytes live in chunks
// The longest run() waits at its end for acks, whatever checkpoint_interval says: a stop must not
// hang on a source (later acks are written from the callbacks anyway).
constexpr int64_t kMaxFinalAckWaitNs = 1'000'000'000;

}  // namespace

// What the ack callbacks share with the source; outlives it while callbacks may still run.
struct FileSource::Checkpoints {
  Checkpoints(std::string path, std::string file_, std::optional<FilePosition> on_disk,
              Counter& failed, Counter& errors)
      : tracker(std::move(path)),
        file(std::move(file_)),
        saved(std::move(on_disk)),
        acks_failed(failed),
        checkpoint_errors(errors) {}

  // Writes the committed position when it differs from the file's. Under mu.
  bool save(std::string& error) {
    const auto& committed = tracker.committed();
    if (!committed || committed == saved) return true;
    if (!write_checkpoint(file, *committed, error)) {
      checkpoint_errors.add();
      return false;
    }
    saved = committed;
    return true;
  }

  void resolved(uint64_t ticket, bool ok) {
    std::lock_guard lock(mu);
    tracker.resolve(ticket, ok);
    if (!ok) {
      acks_failed.add();
      failure_seen = true;
    }
    if (finished && tracker.unresolved() == 0) {
      std::string error;
      save(error);  // counted in checkpoint_errors; the destructor tries again
    }
    cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable cv;  // an ack came back
  CheckpointTracker tracker;
  const std::string file;
  std::optional<FilePosition> saved;  // what the file holds
  bool finished = false;              // run() has returned: late acks write the file themselves
  bool failure_seen = false;
  bool failure_logged = false;
  Counter& acks_failed;
  Counter& checkpoint_errors;
};

FileSource::FileSource(const Options& options, Diagnostics& diag)
    : path_(options.get_string("path")),
      follow_(options.get_string("mode", "read") == "follow"),
      start_at_end_(options.get_string("start_at", "beginning") == "end"),
      poll_interval_ns_(options.get_duration_ns("poll_interval", 200'000'000)),
      max_line_(options.get_size("max_line", 1 << 20)),
      checkpoint_(options.get_bool("checkpoint", true)),
      checkpoint_interval_ns_(options.get_duration_ns("checkpoint_interval", 1'000'000'000)) {
  if (path_.empty()) diag.error("path", "must not be empty");
  if (start_at_end_ && !follow_) diag.error("start_at", "`end` needs `mode: follow`");
}

FileSource::~FileSource() {
  close_file();
  if (checkpoints_) {
    std::lock_guard lock(checkpoints_->mu);
    std::string error;
    checkpoints_->save(error);  // what acks moved since run() returned; counted on failure
  }
}

bool FileSource::start(Context& ctx) {
  events_ = &ctx.counter("events");
  bytes_ = &ctx.counter("bytes");
  empty_ = &ctx.counter("empty");
  oversized_ = &ctx.counter("oversized");
  reopened_ = &ctx.counter("reopened");
  acks_failed_ = &ctx.counter("acks_failed");
  checkpoint_errors_ = &ctx.counter("checkpoint_errors");

  limits_ = ctx.batch_limits();
  limits_.max_events = std::max<size_t>(limits_.max_events, 1);
  limits_.max_bytes = std::max<size_t>(limits_.max_bytes, 1);
  read_size_ = std::min(limits_.max_bytes, kMaxReadSize);
  // Bounds a batch's arena when its chunks hold few events (long runs of empty lines).
  memory_cap_ = std::max<size_t>(4 * (limits_.max_bytes + max_line_ + read_size_), 16 << 20);

  std::optional<FilePosition> saved;
  if (checkpoint_) {
    const std::string dir = ctx.state_dir();
    if (dir.empty()) {
      ctx.log(LogLevel::kError,
              "checkpoint: true needs a writable state directory in data_dir (see the error "
              "above); make data_dir writable for the daemon, or set checkpoint: false");
      return false;
    }
    const std::string file = dir + "checkpoint.json";
    std::string error;
    saved = read_checkpoint(file, error);
    if (!error.empty())
      ctx.logf(LogLevel::kWarn, "{}; ignoring it and starting as without a checkpoint", error);
    checkpoints_ =
        std::make_shared<Checkpoints>(path_, file, saved, *acks_failed_, *checkpoint_errors_);
    if (saved && saved->path != path_) {
      ctx.logf(LogLevel::kInfo, "the checkpoint is for {}, not {}: ignoring it", saved->path,
               path_);
      saved.reset();
    }
  }
  last_save_ns_ = ctx.clock().monotonic_ns();

  int err = open_file(path_, start_at_end_ && !saved);
  if (err == 0) {
    if (saved) apply_checkpoint(ctx, *saved);
    mark_opened();
    return true;
  }
  last_error_ = err;
  if (!follow_) {
    ctx.logf(LogLevel::kError, "cannot open {}: {}", path_, error_text(err));
    return false;
  }
  ctx.logf(LogLevel::kWarn, "cannot open {}: {}; waiting for it to appear", path_, error_text(err));
  return true;
}

// Resumes at the checkpoint's offset when the open file is the checkpoint's and long enough;
// otherwise starts at its beginning, after the rest of a rotated file still at path.1. True when
// it resumed.
bool FileSource::apply_checkpoint(Context& ctx, const FilePosition& saved) {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return false;
  read_offset_ = consumed_offset_ = 0;
  if (static_cast<uint64_t>(st.st_dev) == saved.dev &&
      static_cast<uint64_t>(st.st_ino) == saved.ino) {
    if (static_cast<uint64_t>(st.st_size) >= saved.offset &&
        ::lseek(fd_, static_cast<off_t>(saved.offset), SEEK_SET) >= 0) {
      read_offset_ = consumed_offset_ = saved.offset;
      ctx.logf(LogLevel::kInfo, "resuming {} at byte {} (checkpoint)", path_, saved.offset);
      return true;
    }
    ::lseek(fd_, 0, SEEK_SET);
    ctx.logf(LogLevel::kWarn,
             "{} is shorter ({} bytes) than its checkpoint ({}): it was truncated while stopped; "
             "reading it from the beginning",
             path_, st.st_size, saved.offset);
    return false;
  }
  ::lseek(fd_, 0, SEEK_SET);
  // Rotated while stopped: the old file's unread rest comes first when it is still at path.1.
  const std::string rotated = path_ + ".1";
  struct stat old;
  if (::stat(rotated.c_str(), &old) == 0 && static_cast<uint64_t>(old.st_dev) == saved.dev &&
      static_cast<uint64_t>(old.st_ino) == saved.ino &&
      static_cast<uint64_t>(old.st_size) >= saved.offset) {
    const int new_fd = std::exchange(fd_, -1);
    const dev_t new_dev = dev_;
    const ino_t new_ino = ino_;
    if (open_file(rotated, false) == 0 &&
        ::lseek(fd_, static_cast<off_t>(saved.offset), SEEK_SET) >= 0) {
      ::close(new_fd);
      read_offset_ = consumed_offset_ = saved.offset;
      reading_rotated_ = true;
      ctx.logf(LogLevel::kInfo,
               "{} is another file than at the checkpoint (rotated while stopped): reading the "
               "rest of {} from byte {} first, then {} from its beginning",
               path_, rotated, saved.offset, path_);
      return true;
    }
    close_file();
    fd_ = new_fd;
    dev_ = new_dev;
    ino_ = new_ino;
    read_offset_ = consumed_offset_ = 0;
  }
  ctx.logf(LogLevel::kWarn,
           "{} is another file than at the checkpoint (rotated while stopped) and the old one is "
           "not at {}: reading {} from its beginning",
           path_, rotated, path_);
  return false;
}

void FileSource::mark_opened() {
  if (!checkpoints_) return;
  std::lock_guard lock(checkpoints_->mu);
  auto& tracker = checkpoints_->tracker;
  tracker.resolve(tracker.add(dev_, ino_, consumed_offset_), true);
}

// Writes the checkpoint when it moved and checkpoint_interval has passed since the last write
// (or at once with `finish`, which also hands later writes to the ack callbacks). Logs the first
// failed ack and each new write error.
void FileSource::save_checkpoint(Context& ctx, bool finish) {
  if (!checkpoints_) return;
  const int64_t now = ctx.clock().monotonic_ns();
  const bool due = finish || now - last_save_ns_ >= checkpoint_interval_ns_;
  bool log_failure = false;
  bool ok = true;
  std::string error;
  {
    std::lock_guard lock(checkpoints_->mu);
    if (checkpoints_->failure_seen && !checkpoints_->failure_logged)
      log_failure = checkpoints_->failure_logged = true;
    if (due) ok = checkpoints_->save(error);
    if (finish) checkpoints_->finished = true;
  }
  if (due) last_save_ns_ = now;
  if (log_failure)
    ctx.log(LogLevel::kWarn,
            "a batch's acknowledgement failed (refused or lost downstream): the checkpoint stays "
            "before it for this run, so a restart reads it and what followed again "
            "(at-least-once); further failures are counted in acks_failed");
  if (!ok && error != last_checkpoint_error_) ctx.logf(LogLevel::kError, "checkpoint: {}", error);
  if (due) last_checkpoint_error_ = ok ? std::string() : error;
}

// At the end of run(): the graph drains what this source pushed while run() waits here, so most
// acks come back now; wait up to checkpoint_interval (at most 1 s) for them and write the
// position.
void FileSource::finish_checkpoints(Context& ctx) {
  if (!checkpoints_) return;
  {
    std::unique_lock lock(checkpoints_->mu);
    const int64_t wait_ns = std::min(checkpoint_interval_ns_, kMaxFinalAckWaitNs);
    checkpoints_->cv.wait_for(lock, std::chrono::nanoseconds(wait_ns),
                              [&] { return checkpoints_->tracker.unresolved() == 0; });
  }
  save_checkpoint(ctx, true);
}

bool FileSource::switch_to_path(Context& ctx) {
  close_file();
  if (int err = open_file(path_, false); err != 0) {
    last_error_ = err;
    ctx.logf(LogLevel::kError, "cannot open {}: {}", path_, error_text(err));
    return false;
  }
  mark_opened();
  return true;
}

int FileSource::open_file(const std::string& path, bool at_end) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  int err = ::fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
  off_t start = 0;
  if (err == 0 && at_end && (start = ::lseek(fd, 0, SEEK_END)) < 0) err = errno;
  if (err != 0) {
    ::close(fd);
    return err;
  }
  fd_ = fd;
  reading_rotated_ = false;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  read_offset_ = consumed_offset_ = static_cast<uint64_t>(start);
  return 0;
}

void FileSource::close_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void FileSource::run(Context& ctx, Output& out) {
  batch_ = new_batch();
  batch_offset_ = consumed_offset_;
  if (follow_)
    run_follow(ctx, out);
  else
    run_read(ctx, out);
  close_file();
  out.close();  // an aggregator downstream settles its windows while the acks are awaited
  finish_checkpoints(ctx);
}

void FileSource::run_read(Context& ctx, Output& out) {
  if (reading_rotated_) {
    const Step step = read_available(ctx, out);
    if (step == Step::kEndOfFile) take_tail();
    if (!push(ctx, out) || step != Step::kEndOfFile || !switch_to_path(ctx)) return;
  }
  if (read_available(ctx, out) == Step::kEndOfFile) take_tail();
  push(ctx, out);
}

void FileSource::run_follow(Context& ctx, Output& out) {
  while (!ctx.stopping()) {
    if (fd_ < 0) {
      if (int err = open_file(path_, false); err != 0) {
        if (err != last_error_)
          ctx.logf(LogLevel::kWarn, "cannot open {}: {}; retrying", path_, error_text(err));
        last_error_ = err;
        if (ctx.wait_for_stop(poll_interval_ns_)) break;
        continue;
      }
      mark_opened();
      if (last_error_ != 0) ctx.logf(LogLevel::kInfo, "opened {}", path_);
      last_error_ = 0;
    }
    Step step = read_available(ctx, out);
    if (step == Step::kStop || !push(ctx, out)) break;
    if (step == Step::kError) {
      drop_unconsumed();
      close_file();
    } else {
      bool stop = false;
      if (reopen_if_changed(ctx, out, stop)) continue;
      if (stop) break;
    }
    if (ctx.wait_for_stop(poll_interval_ns_)) break;
  }
  push(ctx, out);
}

bool FileSource::reopen_if_changed(Context& ctx, Output& out, bool& stop) {
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) return false;  // keep the old file until a new one appears
  const char* what = "truncated";
  if (st.st_dev != dev_ || st.st_ino != ino_) {
    // The old file is complete: read what was appended after the end we saw, and its last line
    // even without a newline.
    if (read_available(ctx, out) == Step::kStop) {
      stop = true;
      return false;
    }
    take_tail();
    if (!push(ctx, out)) {
      stop = true;
      return false;
    }
    what = "replaced";
  } else {
    struct stat cur;
    if (::fstat(fd_, &cur) != 0 || static_cast<uint64_t>(cur.st_size) >= read_offset_) return false;
    drop_unconsumed();
  }
  close_file();
  reopened_->add();
  if (int err = open_file(path_, false); err != 0) {
    last_error_ = err;
    ctx.logf(LogLevel::kWarn, "{} was {}; cannot reopen it: {}", path_, what, error_text(err));
  } else {
    mark_opened();
    ctx.logf(LogLevel::kInfo, "{} was {}; reopened it", path_, what);
  }
  return true;
}

FileSource::Step FileSource::read_available(Context& ctx, Output& out) {
  while (!ctx.stopping()) {
    ssize_t n = fill(ctx);
    if (n == 0) return Step::kEndOfFile;
    if (n < 0) {
      int err = static_cast<int>(-n);
      if (err != last_error_)
        ctx.logf(LogLevel::kError, "cannot read {}: {}", path_, error_text(err));
      last_error_ = err;
      return Step::kError;
    }
    while (scan())
      if (!push(ctx, out)) return Step::kStop;
  }
  return Step::kStop;
}

ssize_t FileSource::fill(Context& ctx) {
  if (cap_ - len_ < std::max<size_t>(read_size_ / 8, 1)) make_room();
  ssize_t n;
  do {
    n = ::read(fd_, chunk_ + len_, cap_ - len_);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  if (n > 0) {
    read_time_ns_ = ctx.clock().now_ns();
    if (batch_->empty()) batch_->ingest_time_ns = read_time_ns_;
    len_ += static_cast<size_t>(n);
    read_offset_ += static_cast<uint64_t>(n);
  }
  return n;
}

BatchPtr FileSource::new_batch() const {
  auto batch = std::make_unique<Batch>(kArenaBytes);
  batch->reserve(limits_.max_events, 0);
  return batch;
}

// Frees room after the unconsumed bytes: in place when no event points into the chunk, else in
// a new chunk that starts with a copy of them (at most one partial line). A chunk ends with
// Batch::kPadding zero bytes, as views handed to parsers must.
void FileSource::make_room() {
  const size_t carry = len_ - pos_;
  if (chunk_ != nullptr && !chunk_referenced_ && carry <= cap_ / 2) {
    std::memmove(chunk_, chunk_ + pos_, carry);
  } else {
    const size_t cap = carry + std::max(read_size_, carry);
    std::shared_ptr<char[]> owner(new char[cap + Batch::kPadding]);
    std::memset(owner.get() + cap, 0, Batch::kPadding);
    if (carry != 0) std::memcpy(owner.get(), chunk_ + pos_, carry);
    chunk_owner_ = std::move(owner);
    chunk_ = chunk_owner_.get();
    cap_ = cap;
    chunk_referenced_ = false;
    chunk_attached_ = false;
  }
  len_ = carry;
  pos_ = 0;
}

bool FileSource::scan() {
  while (pos_ < len_) {
    char* begin = chunk_ + pos_;
    const size_t avail = len_ - pos_;
    auto* newline = static_cast<char*>(std::memchr(begin, '\n', avail));
    if (newline == nullptr) {
      if (skipping_ || avail > max_line_ + 1) {  // + 1: a '\r' that "\r\n" will drop
        skipping_ = true;
        skipped_ += avail;
        pos_ = len_;
      }
      return false;
    }
    const size_t consumed = static_cast<size_t>(newline - begin) + 1;
    pos_ += consumed;
    if (skipping_) {
      skipping_ = false;
      skip_line(std::exchange(skipped_, 0) + consumed);
      continue;
    }
    take_line({begin, consumed - 1}, consumed);
    if (full()) return true;
  }
  return false;
}

// Accounts for one '\n'-terminated line of `consumed` file bytes (or the last line of a file);
// `line` is its text without the '\n'.
void FileSource::take_line(std::string_view line, size_t consumed) {
  pending_bytes_ += consumed;
  consumed_offset_ += consumed;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > max_line_) {
    ++pending_oversized_;
  } else if (line.empty()) {
    ++pending_empty_;
  } else {
    if (!chunk_attached_) {
      batch_->keep_alive(chunk_owner_, cap_ + Batch::kPadding);
      chunk_attached_ = chunk_referenced_ = true;
    }
    batch_->add(line, read_time_ns_);
  }
}

void FileSource::skip_line(uint64_t consumed) {
  pending_bytes_ += consumed;
  consumed_offset_ += consumed;
  ++pending_oversized_;
}

void FileSource::take_tail() {
  const size_t rest = len_ - pos_;
  if (skipping_) {
    skipping_ = false;
    skip_line(std::exchange(skipped_, 0) + rest);
  } else if (rest != 0) {
    take_line({chunk_ + pos_, rest}, rest);
  }
  pos_ = len_;
}

void FileSource::drop_unconsumed() {
  pos_ = len_;
  skipping_ = false;
  skipped_ = 0;
}

bool FileSource::full() const {
  return batch_->size() >= limits_.max_events || batch_->raw_bytes() >= limits_.max_bytes ||
         batch_->bytes() >= memory_cap_;
}

// Hands the batch to the graph when it has events (the next batch goes on reading the same
// chunk), and counts what it consumed. False when the graph refused it (the pipeline is stopping).
bool FileSource::push(Context& ctx, Output& out) {
  bool accepted = true;
  size_t events = 0;
  if (!batch_->empty()) {
    BatchPtr done = std::exchange(batch_, new_batch());
    chunk_attached_ = false;

    done->origin.component = std::string(ctx.name());
    done->origin.offset = static_cast<int64_t>(batch_offset_);
    batch_offset_ = consumed_offset_;
    events = done->size();
    if (checkpoints_) {
      uint64_t ticket;
      {
        std::lock_guard lock(checkpoints_->mu);
        ticket = checkpoints_->tracker.add(dev_, ino_, consumed_offset_);
      }
      // Replayable: the checkpoint stays before a failed batch, so the next run reads it again.
      done->acks.push_back(
          AckRef::make([cp = checkpoints_, ticket](bool ok) { cp->resolved(ticket, ok); },
                       AckRef::Replay::kYes));
    }
    accepted = out.push(std::move(done));
  } else {
    if (checkpoints_ && consumed_offset_ != batch_offset_) {  // lines skipped without events
      std::lock_guard lock(checkpoints_->mu);
      auto& tracker = checkpoints_->tracker;
      tracker.resolve(tracker.add(dev_, ino_, consumed_offset_), true);
    }
    batch_offset_ = consumed_offset_;
  }
  events_->add(events);
  bytes_->add(std::exchange(pending_bytes_, 0));
  empty_->add(std::exchange(pending_empty_, 0));
  oversized_->add(std::exchange(pending_oversized_, 0));
  save_checkpoint(ctx, false);
  return accepted;
}

}  // namespace ingestd::plugins

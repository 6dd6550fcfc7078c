#include "file_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

namespace ingestd::plugins {

namespace {

constexpr uint64_t kMinRotateSize = 4096;

std::string error_text(int err) {
  return std::error_code(err, std::system_category()).message();
}

// Writes all of `data`, looping on short writes. Returns 0 or an errno value; `written` says how
// much went out either way.
int write_all(int fd, std::string_view data, size_t& written) {
  written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    written += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

FileSink::Fsync FileSink::fsync_from(const std::string& name) {
  if (name == "never") return Fsync::kNever;
  if (name == "interval") return Fsync::kInterval;
  return Fsync::kBatch;
}

FileSink::FileSink(const Options& options, Diagnostics& diag)
    : path_(options.get_string("path")),
      encoding_(json::encoding_from(options.get_string("encoding"))),
      rotate_size_(options.get_size("rotate_size", 0)),
      rotate_keep_(options.get_int("rotate_keep", 5)),
      fsync_(fsync_from(options.get_string("fsync", "batch"))),
      fsync_interval_ns_(options.get_duration_ns("fsync_interval", 1'000'000'000)) {
  if (path_.empty()) diag.error("path", "must not be empty");
  if (rotate_size_ != 0 && rotate_size_ < kMinRotateSize)
    diag.error("rotate_size", "must be 0 (no rotation) or at least 4KiB");
  if (rotate_keep_ < 1) diag.error("rotate_keep", "must be at least 1");
}

FileSink::~FileSink() {
  close_file();
}

bool FileSink::start(Context& ctx) {
  bytes_ = &ctx.counter("bytes");
  rotations_ = &ctx.counter("rotations");
  const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    ctx.logf(LogLevel::kError, "cannot create directory {}: {}", parent.string(), ec.message());
    return false;
  }
  std::lock_guard lock(mu_);
  if (int err = open_file(); err != 0) {
    ctx.logf(LogLevel::kError, "cannot open {}: {}", path_, error_text(err));
    return false;
  }
  last_sync_ns_ = ctx.clock().monotonic_ns();
  ctx.logf(LogLevel::kInfo, "writing to {}", path_);
  return true;
}

int FileSink::open_file() {
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return errno;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return err;
  }
  fd_ = fd;
  size_ = static_cast<uint64_t>(st.st_size);
  return 0;
}

void FileSink::close_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

SinkResult FileSink::write(Context& ctx, const Batch& batch) {
  buffer_.clear();
  for (const Event& event : batch.events()) json::append_line(buffer_, batch, event, encoding_);

  std::lock_guard lock(mu_);
  if (fd_ < 0) {
    if (int err = open_file(); err != 0)
      return SinkResult::retryable(fmt::format("cannot open {}: {}", path_, error_text(err)));
  }
  if (buffer_.empty()) return SinkResult::ok();
  if (rotate_size_ != 0 && size_ != 0 && size_ + buffer_.size() > rotate_size_) {
    SinkResult rotated = rotate(ctx);
    if (rotated.status != SinkStatus::kOk) return rotated;
  }
  size_t written = 0;
  if (int err = write_all(fd_, buffer_, written); err != 0) {
    if (written != 0) {
      // Cut the torn batch off so that the retry does not leave half of it twice.
      off_t end = ::lseek(fd_, 0, SEEK_CUR);
      if (end >= static_cast<off_t>(written) &&
          ::ftruncate(fd_, end - static_cast<off_t>(written)) == 0)
        written = 0;
    }
    size_ += written;
    return SinkResult::retryable(fmt::format("cannot write {}: {}", path_, error_text(err)));
  }
  size_ += written;
  bytes_->add(written);
  unsynced_ = true;

  if (fsync_ == Fsync::kNever) return SinkResult::ok();
  const int64_t now = ctx.clock().monotonic_ns();
  if (fsync_ == Fsync::kInterval && now - last_sync_ns_ < fsync_interval_ns_)
    return SinkResult::ok();
  if (::fdatasync(fd_) != 0)
    return SinkResult::retryable(fmt::format("cannot sync {}: {}", path_, error_text(errno)));
  last_sync_ns_ = now;
  unsynced_ = false;
  return SinkResult::ok();
}

SinkResult FileSink::rotate(Context& ctx) {
  if (fsync_ != Fsync::kNever && unsynced_ && ::fdatasync(fd_) != 0)
    return SinkResult::retryable(fmt::format("cannot sync {}: {}", path_, error_text(errno)));
  unsynced_ = false;
  for (int64_t i = rotate_keep_ - 1; i >= 1; --i) {
    const std::string from = fmt::format("{}.{}", path_, i);
    const std::string to = fmt::format("{}.{}", path_, i + 1);
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      const int err = errno;
      return SinkResult::retryable(
          fmt::format("cannot rename {} to {}: {}", from, to, error_text(err)));
    }
  }
  const std::string first = path_ + ".1";
  if (::rename(path_.c_str(), first.c_str()) != 0 && errno != ENOENT) {
    const int err = errno;
    return SinkResult::retryable(
        fmt::format("cannot rename {} to {}: {}", path_, first, error_text(err)));
  }
  close_file();
  rotations_->add();
  if (int err = open_file(); err != 0)
    return SinkResult::retryable(fmt::format("cannot open {}: {}", path_, error_text(err)));
  ctx.logf(LogLevel::kDebug, "rotated {}", path_);
  return SinkResult::ok();
}

void FileSink::reopen(Context& ctx) {
  std::lock_guard lock(mu_);
  if (fd_ >= 0 && fsync_ != Fsync::kNever && unsynced_) ::fdatasync(fd_);
  unsynced_ = false;
  close_file();
  if (int err = open_file(); err != 0)
    ctx.logf(LogLevel::kError, "cannot reopen {}: {}; retrying on the next write", path_,
             error_text(err));
  else
    ctx.logf(LogLevel::kInfo, "reopened {}", path_);
}

SinkResult FileSink::flush(Context& ctx) {
  std::lock_guard lock(mu_);
  if (fd_ >= 0 && ::fdatasync(fd_) != 0)
    return SinkResult::retryable(fmt::format("cannot sync {}: {}", path_, error_text(errno)));
  unsynced_ = false;
  last_sync_ns_ = ctx.clock().monotonic_ns();
  return SinkResult::ok();
}

}  // namespace ingestd::plugins

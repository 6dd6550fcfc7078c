#include "stdout_sink.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include <fmt/format.h>

namespace ingestd::plugins {

StdoutSink::StdoutSink(const Options& options, Diagnostics&)
    : encoding_(json::encoding_from(options.get_string("encoding"))) {}

bool StdoutSink::start(Context& ctx) {
  bytes_ = &ctx.counter("bytes");
  return true;
}

SinkResult StdoutSink::write(Context&, const Batch& batch) {
  buffer_.clear();
  for (const Event& event : batch.events()) json::append_line(buffer_, batch, event, encoding_);
  size_t written = 0;
  while (written < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + written, buffer_.size() - written);
    if (n >= 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    const int err = errno;
    bytes_->add(written);
    std::string reason = std::error_code(err, std::system_category()).message();
    // The reader went away (`ingestd | head`): no retry can bring it back. The core counts the
    // batch as failed, and every later batch fails the same way.
    if (err == EPIPE)
      return SinkResult::permanent(
          fmt::format("cannot write to stdout: {}: its reader has closed it", reason));
    return SinkResult::retryable(fmt::format("cannot write to stdout: {}", reason));
  }
  bytes_->add(written);
  return SinkResult::ok();
}

}  // namespace ingestd::plugins

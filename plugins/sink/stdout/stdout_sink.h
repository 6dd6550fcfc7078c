// sink/stdout: one line per event on standard output.
#pragma once

#include <string>

#include "ingestd/component.h"
#include "ingestd/json.h"
#include "ingestd/schema.h"

namespace ingestd::plugins {

inline constexpr const char* kStdoutSinkDoc =
    "Writes one line per event to standard output, for demos and debugging.";

inline constexpr OptionSpec kStdoutSinkOptions[] = {
    json::kEncodingOption,
};

// Writes each batch, encoded as lines, to file descriptor 1 with one write() (looping on short
// writes and waiting when stdout is non-blocking and full), so lines of one batch are never
// interleaved with other output. Errors are retryable with the reason, except EPIPE (the reader
// has closed stdout; the daemon ignores SIGPIPE), which is permanent. Single-worker: write() runs
// on one thread. Counter: bytes.
class StdoutSink final : public Sink {
 public:
  StdoutSink(const Options& options, Diagnostics& diag);

  bool start(Context& ctx) override;
  SinkResult write(Context& ctx, const Batch& batch) override;

  // The descriptor written to; tests point it at a pipe.
  void set_fd_for_testing(int fd) { fd_ = fd; }

 private:
  json::Encoding encoding_;
  int fd_ = 1;
  std::string buffer_;
  Counter* bytes_ = nullptr;
};

}  // namespace ingestd::plugins

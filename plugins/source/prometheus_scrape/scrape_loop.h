// source/prometheus_scrape: the scrapes themselves, a coroutine on the shared io_context.
// Boost.Beast stays inside scrape_loop.cc (it is costly to compile); this header is plain.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ingestd/component.h"
#include "ingestd/event.h"
#include "sink/http/http_request.h"

namespace boost::asio {
class io_context;
}

namespace ingestd::plugins::scrape {

// What a scrape asks for.
struct Target {
  http::Url url;
  http::Headers headers;  // replace the defaults of Host, User-Agent and Accept
  int64_t timeout_ns = 10'000'000'000;
  uint64_t max_body_size = 10 << 20;
  bool gzip = true;  // Accept-Encoding: gzip, and decompress such answers
};

// Why a scrape failed, each counted apart.
enum class Failure { kNone, kConnect, kTimeout, kStatus, kBodyTooLarge, kRead };
const char* failure_name(Failure failure);  // "connect", "timeout", "status", ...

// The result of one scrape.
struct Outcome {
  Failure failure = Failure::kNone;
  int status = 0;     // the HTTP status, when an answer's header was read
  std::string error;  // when failed: "cannot connect to h:9100: Connection refused", "HTTP 401 ..."
  std::string body;   // when not failed: the whole body
  int64_t start_ns = 0;     // wall clock (Context::clock()) when the scrape began
  int64_t duration_ns = 0;  // from the start to the last byte, or to the failure
};

// Scrapes `target` every `interval_ns` on `io`, hands each Outcome to `handler` and pushes the
// batch it returns (none when it returns nullptr) downstream.
//
// Contract:
// - One coroutine on a strand of `io`: the first scrape begins at start(), each next one
//   `interval_ns` after the previous began (intervals missed while downstream was full are
//   skipped, not caught up). One scrape is: resolve (Asio's resolver thread), connect, GET with
//   `Connection: close`, read the answer (decompressed when it is gzip); connect, send and read
//   share one `timeout_ns` deadline; max_body_size bounds the body as sent and as decompressed.
//   A name server that hangs delays the scrape by the system resolver's own timeouts.
// - No io thread ever blocks: batches go out with net::async_push() (try_push, then a short
//   timer backoff while downstream is full).
// - `handler` runs on the strand, one call at a time; it may keep or move the Outcome's body.
// - stop() (any thread, more than once) ends the loop: the wait, the scrape or the push in
//   progress is cancelled, and a batch not yet taken is dropped. wait_for() tells when the
//   coroutine has ended; only then may `out`, `clock` and `handler` go away.
// - The io_context must run (on any number of threads) until the coroutine has ended: the
//   daemon's shared one (Context::io()), whose threads run the plugin's Asio code as their own
//   (see cmake/IngestdPlugin.cmake). Destroying the Loop does not stop the coroutine: stop() and
//   wait_for() first.
class Loop {
 public:
  using Handler = std::function<BatchPtr(Outcome&)>;

  Loop(boost::asio::io_context& io, Target target, int64_t interval_ns, const Clock& clock,
       Output& out, Handler handler);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  void start();
  void stop();
  // Waits up to timeout_ns for the coroutine to end; true when it has.
  bool wait_for(int64_t timeout_ns);
  // Set when the coroutine ended with an exception (its text); empty otherwise.
  std::string error() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ingestd::plugins::scrape

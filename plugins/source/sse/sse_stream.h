// source/sse: the connection loop, a coroutine on the shared io_context. Boost.Beast stays inside
// sse_stream.cc (it is costly to compile); this header is plain.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backoff.h"
#include "ingestd/component.h"
#include "ingestd/event.h"
#include "sink/http/http_request.h"

namespace boost::asio {
class io_context;
}

namespace ingestd::plugins::sse {

// What a connection asks for and how long it may take.
struct Target {
  http::Url url;
  http::Headers headers;  // replace the defaults of Host, User-Agent, Accept and Cache-Control
  int64_t connect_timeout_ns = 10'000'000'000;  // resolve, connect, request, answer's header
  int64_t read_timeout_ns = 60'000'000'000;     // the longest silence while streaming
  size_t read_size = 128 << 10;                 // bytes read from the body at most per read
  Backoff::Config backoff;
  bool stop_at_eof = false;  // a stream the server ended cleanly ends the loop
};

// How one connection ended, each counted apart.
enum class End {
  kConnect,      // resolve or connect failed
  kTimeout,      // connect_timeout, or read_timeout without a byte
  kStatus,       // an answer other than 200
  kContentType,  // a 200 that is not text/event-stream
  kRead,         // the stream broke (reset, a cut chunked body, a send error)
  kClosed,       // the server ended the body cleanly (EOF, or the last chunk)
  kStopped,      // the source is stopping
};
const char* end_name(End end);  // "connect", "timeout", "status", ...

// What the loop asks of its owner (the source). Every call is on the loop's strand, one at a time.
class Listener {
 public:
  virtual ~Listener() = default;
  // The Last-Event-ID to send (none when empty).
  virtual std::string last_event_id() = 0;
  // An attempt is about to begin; `wait_ns` is how long the loop waited before it (0 the first).
  virtual void on_attempt(int64_t wait_ns) = 0;
  // The server answered 200 with text/event-stream.
  virtual void on_connected() = 0;
  // The next bytes of the body (possibly none). Batches complete by now go to `ready` (pushed in
  // order after the call, before the next read: while they wait for room nothing more is read).
  // `more` is true when more of the body is already received (the socket or the parser holds
  // some): a batch not yet full may wait for it. With `more` false every event so far must go.
  virtual void on_bytes(std::string_view bytes, bool more, std::vector<BatchPtr>& ready) = 0;
  // The connection ended (not called for kStopped). `error` says why, for a log line. Returns the
  // reconnection time the server set (`retry:`), if it set one since the last call.
  virtual std::optional<int64_t> on_end(End end, int status, const std::string& error) = 0;
};

// Reads one event stream from `target` on `io`, reconnecting after every end with Backoff.
//
// Contract:
// - One coroutine on a strand of `io`. A connection: resolve (Asio's resolver thread), connect,
//   GET with Accept: text/event-stream, Cache-Control: no-cache and Last-Event-ID, read the
//   answer's header (all within connect_timeout), then read the body (plain, chunked or up to
//   EOF) in pieces of at most read_size, each within read_timeout, handing each to the Listener
//   and pushing the batches it readies with net::async_push() (no io thread ever blocks; the
//   socket is not read while downstream is full, so TCP pushes back on the server). Before the
//   connection ends, the Listener is told that no more is coming (`more` false).
// - After every end but kStopped the loop waits Backoff::next_ns() and connects again: the base
//   after a connection that got a 200 event stream (or after a first failure), doubling with each
//   further failure in a row; a retry: time from on_end() becomes the base. With stop_at_eof a
//   kClosed end ends the loop.
// - stop() (any thread, more than once) ends the loop: the wait, the connection or the push in
//   progress is cancelled, and batches not yet taken are dropped. wait_for() tells when the
//   coroutine has ended; only then may `out` and `listener` go away.
// - The io_context must run until the coroutine has ended: the daemon's shared one
//   (Context::io()). Destroying the Loop does not stop the coroutine: stop() and wait_for() first.
class Loop {
 public:
  Loop(boost::asio::io_context& io, Target target, std::function<double()> uniform, Output& out,
       Listener& listener);
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

}  // namespace ingestd::plugins::sse

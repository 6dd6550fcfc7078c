// source/http: the HTTP/1.1 server, coroutines on the shared io_context.
// Boost.Beast stays inside server.cc (it is costly to compile); this header is plain.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ingestd/component.h"
#include "request.h"

namespace boost::asio {
class io_context;
}

namespace ingestd::plugins::http_source {

struct Connection;

// Serves `settings` on `io` and pushes the records of the requests it takes to the Output given
// to serve().
//
// Contract:
// - listen() binds and listens (no connection is taken before serve()); it returns false with
//   `error` set when it cannot, and the port it bound in port() (useful with port 0). The socket
//   has SO_REUSEPORT, so that a replacement started by a reload can listen on the port while
//   this one still does; the kernel then spreads new connections over both until this one stops.
// - serve() starts accepting. Each connection is one coroutine on a strand of its own: it reads
//   requests one after another (keep-alive), answers each, and never blocks an io thread.
// - Pushing: a request's records go whole into the open batch, which one coroutine (the flusher)
//   pushes with net::async_push() as soon as it is free: requests that arrive together (in one
//   turn of the io loop, or while a push waits for room) share a batch, up to the context's
//   BatchLimits, so that a queue operation and a wake-up downstream are paid per batch. A request
//   whose batch finds downstream full for push_timeout_ns (from the batch's first request) is
//   answered 503 with Retry-After, and so is one that finds 4 batches' worth of bytes already
//   waiting. The answer (202) comes once the batch is pushed.
// - Limits: a request's header must arrive within header_timeout_ns of its first byte and be at
//   most max_header_size (431); its body within body_timeout_ns and at most max_body_size (413);
//   a connection that sends nothing for idle_timeout_ns between requests is closed. Past
//   max_connections a new connection is accepted and closed at once (connections_refused).
//   A request refused before its body is read is answered and the connection closed after
//   reading (and dropping) what the client still sends, for at most body_timeout_ns, so that the
//   client sees the answer rather than a reset.
// - With settings.durable, a request is answered 200 once the acknowledgement of its batch
//   succeeds, 500 when it fails and 504 after ack_timeout_ns; otherwise 202 once pushed.
// - stop() (any thread, more than once) stops accepting, closes idle connections, answers 503 to
//   requests being read or pushed or waiting for their acknowledgement, and closes every
//   connection. wait_for() tells when every coroutine has ended; only then may `ctx`, `out` and
//   `settings` go away.
// - The io_context must run until then. Destroying the Server without stop() and wait_for() is
//   only allowed when serve() was never called.
class Server {
 public:
  Server(boost::asio::io_context& io, const Settings& settings, const SourceCounters& counters,
         Context& ctx);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  bool listen(std::string& error);
  uint16_t port() const;
  void serve(Output& out);
  void stop();
  // Waits up to timeout_ns for every coroutine to end; true when they have.
  bool wait_for(int64_t timeout_ns);

 private:
  friend struct Connection;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ingestd::plugins::http_source

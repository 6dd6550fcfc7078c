// The admin HTTP server: /metrics, /health, /api/v1/status, /api/v1/aggregates/<component>, and
// the dashboard (GET /).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "control/daemon_api.h"

namespace boost::asio {
class io_context;
}

namespace ingestd::admin {

struct ServerOptions {
  std::string host = "127.0.0.1";  // an IP literal or localhost
  uint16_t port = 8686;            // 0: any free port (see Server::address())
  std::string token;               // non-empty: every request must carry "Bearer <token>"
  size_t max_connections = 64;     // beyond: a new connection is closed at once
  int64_t request_timeout_ns = 10'000'000'000;  // to receive a whole request (slow clients)
  int64_t idle_timeout_ns = 60'000'000'000;     // a kept-alive connection waiting for the next
};

// Serves the admin API of one daemon over HTTP/1.1 on the daemon's io_context.
//
// Contract: start() binds and listens at once (so that a port in use is a start error) and serves
// once the io_context runs. Connections are handled asynchronously, each on a strand of its own:
// a slow or idle client never holds up another, and is dropped past request_timeout (a request
// still arriving) or idle_timeout (nothing sent). Requests are bounded (8 KiB of header, no
// body accepted beyond 4 KiB). The answers that call into the daemon (status, metrics,
// aggregates, which may wait up to 2 s for an aggregator) run on two threads of the server's own,
// never on an io thread. Bad input never throws out of the server: it gets a 4xx with a JSON
// {"error": ...} body.
//
// Lifetime: the destructor stops accepting, closes every connection and waits for their
// handlers to end; destroy the server before the io_context stops running. `api` must outlive
// the server. Thread-safe: address() from any thread.
class Server {
 public:
  // nullptr with the reason in `error` ("cannot listen on 127.0.0.1:8686: Address already in use").
  static std::unique_ptr<Server> start(boost::asio::io_context& io, control::DaemonApi& api,
                                       const ServerOptions& options, std::string& error);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address, "127.0.0.1:8686" (IPv6 in brackets), the real port when 0 was asked for.
  std::string address() const;

  struct Impl;

 private:
  explicit Server(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace ingestd::admin

// sink/http: one keep-alive HTTP/1.1 connection that sends a POST and waits for its answer.
// Boost.Beast stays inside http_client.cc (it is costly to compile); this header is plain.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "http_request.h"

namespace ingestd::plugins::http {

// The outcome of one exchange: an answer, or a transport failure (no answer at all).
struct Exchange {
  bool answered = false;
  Response response;  // when answered
  std::string error;  // when not: "cannot connect to ...: Connection refused", "timed out ..."
  bool timed_out = false;
};

// A blocking HTTP/1.1 client for one origin, with one persistent connection.
//
// Contract:
// - post() sends one request and returns when the answer has been read, the transport failed,
//   or `timeout_ns` has passed since it was called, whichever comes first: resolving (see below),
//   connecting, writing the request and reading the answer all share that one deadline, so a
//   server that accepts and never answers costs exactly `timeout_ns`.
// - The connection is opened on the first post() and kept for the next ones (keep-alive). It is
//   dropped after any transport failure or timeout, when the answer says `Connection: close`,
//   and when the server has closed it while idle (checked before each request, so a stale
//   connection is not written to); the next post() opens a new one. post() never sends a request
//   twice: a failure is returned, and whether to send again is the caller's decision.
// - The host name is resolved (getaddrinfo, blocking) each time a connection is opened; a literal
//   address resolves at once. A name server that hangs is bounded by the resolver's own timeouts
//   (resolv.conf), not by `timeout_ns`.
// - Answers are read in full so that the connection stays usable; only the first 4 KiB of a body
//   are kept, and a body over 1 MiB ends the connection (the status still counts).
// - Threading: not thread-safe; one caller at a time. It runs its own io_context on the calling
//   thread, so the caller's thread is the one that blocks and nothing else is needed.
class HttpClient {
 public:
  HttpClient(Url url, Headers headers, int64_t timeout_ns);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs `body` (taken for the call and given back, so its capacity is reused) with
  // Content-Type `type` and, when `gzip`, Content-Encoding: gzip, plus the configured headers.
  Exchange post(std::string& body, const char* type, bool gzip);

  // Connections opened so far.
  uint64_t connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ingestd::plugins::http

// ingestd-loadgen: the run itself, worker threads each driving their share of the connections
// through one epoll loop, and what they counted.
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "body.h"
#include "latency_histogram.h"

namespace ingestd::loadgen {

struct LoadOptions {
  sockaddr_storage address{};  // resolved once, before the run
  socklen_t address_size = 0;
  std::string head;  // request_head(): up to "Content-Length: "
  BodyRenderer::Options body;
  uint32_t connections = 1;
  uint32_t threads = 1;
  double rate = 0;                         // requests/s over all connections; 0: as fast as they go
  uint64_t requests = 0;                   // 0: no limit
  int64_t duration_ns = 0;                 // 0: no limit
  int64_t timeout_ns = 30'000'000'000;     // an answer not complete by then is an error
  int64_t connect_retry_ns = 100'000'000;  // a refused connection is tried again after this
};

// What a run counted, merged over its threads.
struct LoadResult {
  LatencyHistogram latency;  // ns, of every answered request: from its first byte written (with
                             // a rate: from when it was due) to the end of its answer
  std::array<uint64_t, 1000> statuses{};  // answers by status code (100..999)
  uint64_t answered = 0;                  // answers of any status
  uint64_t ok = 0;                        // 2xx answers
  uint64_t ok_records = 0;                // records of the requests answered 2xx
  uint64_t body_bytes = 0;                // request bodies as sent (compressed with gzip)
  uint64_t raw_bytes = 0;                 // the same uncompressed
  uint64_t connect_errors = 0;            // connections refused or failed (each retried)
  uint64_t io_errors = 0;                 // a connection broken during a request
  uint64_t timeouts = 0;                  // no whole answer within timeout_ns
  uint64_t protocol_errors = 0;           // malformed answers
  uint64_t connections_opened = 0;
  double seconds = 0;  // from the start to the last answer (or to the end of the run)

  void merge(const LoadResult& other);
  uint64_t errors() const { return connect_errors + io_errors + timeouts + protocol_errors; }
};

// Runs the load to its end: `requests` requests, or `duration_ns`, or until `stop` becomes true
// (a signal). Requests that fail (io error, timeout, malformed answer) are not sent again; a
// request whose connection could not be made is, on a new connection, after connect_retry_ns,
// until the duration is over (with `requests` and no duration: until `stop`).
// The bodies of request k carry the records k * records .. (k + 1) * records - 1.
LoadResult run_load(const LoadOptions& options, const std::atomic<bool>& stop);

}  // namespace ingestd::loadgen

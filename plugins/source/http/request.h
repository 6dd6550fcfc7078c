// source/http: what the source decides about one request, apart from the HTTP exchange itself
// (server.cc): the route, the checks that answer 4xx, and the batch a body becomes.
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "body.h"
#include "ingestd/component.h"
#include "ingestd/event.h"
#include "record_check.h"
#include "shared/net/gunzip.h"

namespace ingestd::plugins::http_source {

// The statuses the source answers; each is counted per route as requests.<route>.<status>.
inline constexpr int kStatuses[] = {200, 202, 400, 401, 404, 405, 408,
                                    413, 415, 431, 500, 503, 504};

// The name under which requests that match no route (or fail before their target is known) are
// counted: requests.unrouted.<status>.
inline constexpr std::string_view kUnrouted = "unrouted";

// requests.<route>.<status> for one route; bound in start().
class StatusCounters {
 public:
  void bind(Context& ctx, std::string_view route);
  void count(int status) const;

 private:
  Counter* counters_[std::size(kStatuses)] = {};
};

struct Route {
  std::string path;  // as configured; matched without its trailing '/' and the query
  std::string name;  // names the counters
  bool post = true;
  bool put = false;
  std::vector<std::pair<std::string, std::string>> fields;  // added to each record
  std::vector<Requirement> require;                         // checked in each record
  StatusCounters counters;
};

// Everything the server needs, checked by the factory.
struct Settings {
  std::string host;  // an IP address
  uint16_t port = 0;
  std::vector<Route> routes;
  Route unrouted;
  bool durable = false;  // ack: durable
  int64_t ack_timeout_ns = 10'000'000'000;
  int64_t push_timeout_ns = 500'000'000;
  int64_t retry_after_s = 1;
  uint64_t max_body_size = 10 << 20;
  uint64_t max_decompressed_size = 64 << 20;
  uint32_t max_header_size = 16 << 10;
  int64_t header_timeout_ns = 10'000'000'000;
  int64_t body_timeout_ns = 30'000'000'000;
  int64_t idle_timeout_ns = 60'000'000'000;
  size_t max_connections = 16384;
  std::string token;  // empty: no authentication
  bool require_content_type = false;
};

// The source's own counters besides requests.<route>.<status>; bound in start().
struct SourceCounters {
  Counter* records = nullptr;              // records emitted
  Counter* bytes = nullptr;                // body bytes received, as sent (compressed or not)
  Counter* connections_opened = nullptr;   // accepted and served
  Counter* connections_closed = nullptr;   // opened - closed = open now
  Counter* connections_refused = nullptr;  // closed at once, max_connections reached
  Counter* rejected = nullptr;             // requests answered with a status other than 2xx
  Counter* timeouts = nullptr;             // connections closed by a header, body or idle timeout

  void bind(Context& ctx);
};

// Reused by one connection from request to request, so that a request allocates nothing once the
// buffers have grown to its size.
struct Scratch {
  net::Gunzip gunzip;
  std::string inflated;
  std::vector<std::string_view> records;
  RecordChecker checker;  // routes with `require`
  std::string error;      // why a request was refused, sent as the answer's message
};

// A request's outcome before its body is read: 0 to go on, else the status to answer.
struct Verdict {
  int status = 0;
  std::string_view message;
  BodyFormat format = BodyFormat::kJson;
  bool gzip = false;
};

// The route of a request target ("/api/visit/v1/?x=1"), nullptr when none matches.
const Route* find_route(const std::vector<Route>& routes, std::string_view target);

// The checks made on the header: method (405), token (401), Content-Type (415) and
// Content-Encoding (415). `authorization` is the Authorization header's value.
Verdict check_request(const Settings& settings, const Route& route, std::string_view method,
                      std::string_view content_type, std::string_view content_encoding,
                      std::string_view authorization);

// Decompresses the body when `verdict.gzip` and cuts it into records: scratch.records views
// into `body`, which is set to the decompressed body (in scratch.inflated) or left as it is; with
// the route's `require`, checks every record. Returns 0, or the status to answer (400 for broken
// gzip or JSON framing or a record without what the route requires, 413 past
// max_decompressed_size) with the reason in scratch.error.
int prepare_body(const Settings& settings, const Route& route, const Verdict& verdict,
                 std::string_view& body, Scratch& scratch);

// Appends `records` (views into `body`) to `batch` as raw records with the route's fields and
// event time `now_ns`: one copy of the body into the batch's arena, and of each field once.
// At most kMaxRouteFields fields are attached.
void append_records(Batch& batch, const Route& route, std::string_view body,
                    const std::vector<std::string_view>& records, int64_t now_ns);

inline constexpr size_t kMaxRouteFields = 16;

}  // namespace ingestd::plugins::http_source

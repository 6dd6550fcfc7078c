// What the admin server answers, apart from the network: a request in, a response out.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/daemon_api.h"

namespace ingestd::admin {

struct Request {
  std::string method;         // "GET"
  std::string target;         // "/api/v1/aggregates/sps?where=device=tv"
  std::string accept;         // the Accept header
  std::string authorization;  // the Authorization header
  std::string if_none_match;  // the If-None-Match header
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra ones (Allow, ETag, ...); one the server also sets (Cache-Control: no-store) replaces it.
  std::vector<std::pair<std::string, std::string>> headers;
};

// The routes:
//   GET /, /ui/<file>                     the dashboard (admin/dashboard.h), without the token;
//                                         ETag and Cache-Control: no-cache, 304 on If-None-Match
//   GET /metrics                          Prometheus text 0.0.4, or OpenMetrics 1.0 when Accept
//                                         asks for application/openmetrics-text
//   GET /health                           200 "ok: running", 503 with the reason
//   GET /api/v1/status                    DaemonApi::status_json()
//   GET /api/v1/aggregates/<c>            DaemonApi::aggregates_json(); query: where=key=value
//                                         (repeatable), from, to (Unix seconds, fractions
//                                         allowed), limit
//   GET /api/v1/aggregates/<c>/total      the numeric fields of the selected rows summed over
//                                         every group, per window (rows with the same
//                                         window_start and window_end fields; see
//                                         docs/operations.md)
// 401 without the right bearer token (when `token` is set), 404 for other paths and for no such
// aggregator, 405 for a method other than GET or HEAD, 400 for bad parameters, 503 when the
// daemon did not answer. Never throws.
Response route(control::DaemonApi& api, const Request& request, std::string_view token);

// Percent-decoding of a query component ('+' is a space); false on a bad escape.
bool url_decode(std::string_view in, std::string& out);

// The /total of an aggregates JSON array: one object per (window_start, window_end) with "groups"
// (rows summed) and every numeric field's sum; string fields other than the window's are
// dropped. Throws std::runtime_error when `rows` is not a JSON array of objects.
std::string total_json(std::string_view rows);

}  // namespace ingestd::admin

// source/http: an HTTP/1.1 server that takes JSON records POSTed to its routes.
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <string>

#include "ingestd/component.h"
#include "ingestd/schema.h"
#include "request.h"

namespace ingestd::plugins {

namespace http_source {
class Server;
}

inline constexpr const char* kHttpSourceDoc =
    "An HTTP/1.1 server (keep-alive) that takes records POSTed to its routes: a body is one JSON "
    "object, a JSON array of objects or NDJSON, optionally gzip-compressed; each object becomes "
    "one raw record, with the route's fields, for parse/json. Answers 202 once the records are "
    "queued, or with `ack: durable` 200 once every sink has taken them; 503 with Retry-After "
    "while downstream is full; 4xx for what it refuses (see the plugin's README).";

inline constexpr OptionSpec kHttpRouteOptions[] = {
    {.name = "path",
     .type = OptionType::kString,
     .required = true,
     .doc = "The request path, e.g. /api/visit/v1/; matched exactly, ignoring a trailing '/' and "
            "the query string."},
    {.name = "name",
     .type = OptionType::kString,
     .doc = "Names the route's counters (requests.<name>.<status>): letters, digits, '_' and "
            "'-'. Default: the path's letters and digits, '_' between (api_visit_v1)."},
    {.name = "methods",
     .type = OptionType::kStringList,
     .default_value = "[POST]",
     .doc = "The methods taken: POST, PUT or both; others are answered 405."},
    {.name = "fields",
     .type = OptionType::kStringMap,
     .doc = "Fields added to every record of the route, name: value (strings, at most 16), e.g. "
            "{stream: visit}. They come before the record's own fields: a record's field of the "
            "same name is kept but lookups see the route's."},
    {.name = "require",
     .type = OptionType::kStringMap,
     .doc = "Fields every record of the route must have, name: type (string, number, integer, "
            "bool, object, array or any), e.g. {username: string, count: number}. A request "
            "with a record that is not valid JSON, not an object, or lacks one of them is "
            "answered 400 saying which record and field, and delivers nothing. Checking parses "
            "each record once more."},
};

inline constexpr OptionSpec kHttpSourceOptions[] = {
    {.name = "listen",
     .type = OptionType::kString,
     .required = true,
     .doc = "Address and port to listen on: 127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080 or "
            "localhost:8080. Port 0 takes a free port, logged at start."},
    {.name = "routes",
     .type = OptionType::kObjectList,
     .required = true,
     .doc = "The paths taken, each with its methods and the fields added to its records; any "
            "other path is answered 404.",
     .children = kHttpRouteOptions,
     .child_count = std::size(kHttpRouteOptions)},
    {.name = "ack",
     .type = OptionType::kEnum,
     .default_value = "enqueue",
     .choices = "enqueue|durable",
     .doc = "When a request is answered: `enqueue`, 202 once its records are in the source's "
            "output queue; `durable`, 200 once every sink has written or spooled them (500 if "
            "they were dead-lettered or dropped, 504 after ack_timeout)."},
    {.name = "ack_timeout",
     .type = OptionType::kDuration,
     .default_value = "10s",
     .min = "1ms",
     .doc = "With `ack: durable`, how long a request waits for its records to be taken by every "
            "sink before it is answered 504 (they may still be delivered: a retry may duplicate "
            "them)."},
    {.name = "push_timeout",
     .type = OptionType::kDuration,
     .default_value = "500ms",
     .min = "0ms",
     .doc = "How long a request waits for room while downstream is full before it is answered 503 "
            "with Retry-After; no io thread waits meanwhile."},
    {.name = "retry_after",
     .type = OptionType::kDuration,
     .default_value = "1s",
     .min = "1s",
     .max = "1h",
     .doc = "The Retry-After of a 503, in whole seconds (rounded up)."},
    {.name = "max_body_size",
     .type = OptionType::kSize,
     .default_value = "10MiB",
     .min = "1KiB",
     .doc = "The largest body taken, as sent; a larger one is answered 413 and the connection "
            "closed."},
    {.name = "max_decompressed_size",
     .type = OptionType::kSize,
     .default_value = "64MiB",
     .min = "1KiB",
     .doc = "The largest a gzip body may grow to once decompressed (against gzip bombs): "
            "decompression stops there and the request is answered 413."},
    {.name = "max_header_size",
     .type = OptionType::kSize,
     .default_value = "16KiB",
     .min = "1KiB",
     .max = "1MiB",
     .doc = "The largest request line and header together; a larger one is answered 431 and the "
            "connection closed."},
    {.name = "header_timeout",
     .type = OptionType::kDuration,
     .default_value = "10s",
     .min = "10ms",
     .doc = "How long a request's header may take to arrive from its first byte; a slower one "
            "(slowloris) has its connection closed, counted in `timeouts`."},
    {.name = "body_timeout",
     .type = OptionType::kDuration,
     .default_value = "30s",
     .min = "10ms",
     .doc = "How long a request's body may take to arrive after its header (and an answer to be "
            "written); a slower one has its connection closed, counted in `timeouts`."},
    {.name = "idle_timeout",
     .type = OptionType::kDuration,
     .default_value = "60s",
     .min = "10ms",
     .doc = "How long a keep-alive connection may wait for its next request before it is closed "
            "(counted in `timeouts`)."},
    {.name = "max_connections",
     .type = OptionType::kInt,
     .default_value = "16384",
     .min = "1",
     .max = "1000000",
     .doc = "The most connections open at once; a connection beyond is accepted and closed at "
            "once, counted in `connections_refused`. Each connection holds a file descriptor: "
            "the daemon's open file limit (LimitNOFILE) must exceed this."},
    {.name = "token",
     .type = OptionType::kString,
     .doc = "A bearer token every request must carry (Authorization: Bearer <token>), else 401. "
            "Write it as ${VAR} to take it from the environment. Not with token_file."},
    {.name = "token_file",
     .type = OptionType::kString,
     .doc = "A file holding the bearer token (surrounding whitespace ignored), read at start. Not "
            "with token."},
    {.name = "require_content_type",
     .type = OptionType::kBool,
     .default_value = "false",
     .doc = "Answer 415 to a request without a Content-Type, instead of reading its body as JSON "
            "(application/json)."},
};

// The HTTP source: an http_source::Server on the daemon's shared io_context (Context::io()).
//
// Contract:
// - The factory checks every option (listen address, routes, token) and does no I/O. start()
//   reads token_file, binds the listening socket (failing start-up when it cannot: the port is
//   taken) and looks up the counters. run() accepts connections until ctx.stopping(), then stops
//   the server (see Server::stop()) and returns once every connection has ended.
// - A request's records (one per JSON object or NDJSON line, raw, each with the route's fields,
//   ingest time as event time) go whole into one batch, in the batch's arena; requests that
//   arrive together share a batch (see Server). With `ack: durable` each request puts one AckRef
//   in its batch, whose verdict answers it.
// - Counters: requests.<route>.<status> (requests.unrouted.<status> for unknown paths and
//   requests that fail before their path is known), records, bytes, connections_opened,
//   connections_closed, connections_refused, rejected (non-2xx answers), timeouts.
class HttpSource final : public Source {
 public:
  HttpSource(const Options& options, Diagnostics& diag);
  ~HttpSource() override;

  bool start(Context& ctx) override;
  void run(Context& ctx, Output& out) override;

  const http_source::Settings& settings() const { return settings_; }

 private:
  http_source::Settings settings_;
  std::string token_file_;
  http_source::SourceCounters counters_;
  std::unique_ptr<http_source::Server> server_;
  bool valid_ = false;
};

namespace http_source {
// "127.0.0.1:8080" -> host and port; false with `error` set when it is not an address and port.
bool parse_listen(std::string_view listen, std::string& host, uint16_t& port, std::string& error);
// The default name of a route: "/api/visit/v1/" -> "api_visit_v1", "/" -> "root".
std::string route_name(std::string_view path);
}  // namespace http_source

}  // namespace ingestd::plugins

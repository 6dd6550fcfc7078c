// sink/http: each batch POSTed to an HTTP endpoint as NDJSON or a JSON array.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "http_request.h"
#include "ingestd/component.h"
#include "ingestd/json.h"
#include "ingestd/schema.h"

namespace ingestd::plugins {

namespace http {
class HttpClient;
}

inline constexpr const char* kHttpSinkDoc =
    "POSTs each batch to an http:// endpoint as newline-delimited JSON or one JSON array, "
    "optionally gzip-compressed, over a kept-alive connection. 2xx delivers the batch; 408, 429, "
    "5xx and network failures are retried by the core; other answers dead-letter it.";

inline constexpr OptionSpec kHttpSinkOptions[] = {
    {.name = "url",
     .type = OptionType::kString,
     .required = true,
     .doc = "Where to POST: http://host[:port][/path][?query]. https is not supported (put a TLS "
            "proxy in front); credentials go in `headers`."},
    {.name = "format",
     .type = OptionType::kEnum,
     .default_value = "ndjson",
     .choices = "ndjson|json_array",
     .doc = "`ndjson`: one event per line (Content-Type application/x-ndjson); `json_array`: the "
            "events as the elements of one JSON array (application/json). With json_array, raw "
            "bytes must be JSON for the body to be valid: parse them first or use `encoding: "
            "json`."},
    json::kEncodingOption,
    {.name = "gzip",
     .type = OptionType::kBool,
     .default_value = "false",
     .doc = "Compress each body with gzip and send Content-Encoding: gzip."},
    {.name = "headers",
     .type = OptionType::kStringMap,
     .doc = "Extra request headers, name: value (a list sends the header once per value), e.g. "
            "`Authorization: Bearer ${TOKEN}`. They replace the defaults of Host, User-Agent and "
            "Content-Type; Content-Length, Transfer-Encoding, Connection and Content-Encoding are "
            "the sink's."},
    {.name = "timeout",
     .type = OptionType::kDuration,
     .default_value = "10s",
     .min = "1ms",
     .doc = "The longest one request may take, connecting, sending and waiting for the whole "
            "answer together; when it passes the connection is dropped and the batch is "
            "retried."},
    {.name = "max_body_size",
     .type = OptionType::kSize,
     .default_value = "0",
     .doc = "Split a batch into several requests whose bodies (before gzip) stay within this "
            "size; an event larger than it goes alone. 0 (default): one request per batch. When a "
            "later request of a split batch fails, the whole batch is retried, so the events of "
            "its earlier requests are sent again."},
};

// Sends each batch as one POST (or several, with max_body_size) over an HttpClient.
//
// Contract:
// - The factory checks the URL (http:// only, with a host and a valid port) and the headers, and
//   does no I/O. start() looks up the counters; the first write() connects.
// - write() blocks its worker until every request of the batch is answered or has failed, each
//   bounded by `timeout`. kOk: every request got a 2xx. kRetryable: 408, 429, 5xx, or no answer
//   (refused, reset, timed out, name not resolved), with Retry-After of a 429/503 passed on in
//   retry_after_ns. kPermanent: any other status, with the status and the start of the body in
//   the error. Delivery is at least once: a batch is sent again when the core retries it, even
//   if the server had taken it but its answer was lost.
// - The plugin never retries itself and never sends a request twice in one write().
// - Threading: one instance per worker (`workers: N` gives N connections); an instance is used by
//   one thread at a time.
// Counters: requests, bytes (bodies as sent, after gzip), responses_2xx, responses_4xx,
// responses_5xx (and responses_other), transport_errors, timeouts (also counted in
// transport_errors), connections (opened).
class HttpSink final : public Sink {
 public:
  HttpSink(const Options& options, Diagnostics& diag);
  ~HttpSink() override;
  HttpSink(const HttpSink&) = delete;
  HttpSink& operator=(const HttpSink&) = delete;

  bool start(Context& ctx) override;
  SinkResult write(Context& ctx, const Batch& batch) override;

 private:
  SinkResult send(Context& ctx);

  http::Format format_;
  json::Encoding encoding_;
  bool gzip_;
  uint64_t max_body_;
  std::string url_text_;
  std::unique_ptr<http::HttpClient> client_;

  std::string body_;
  std::string compressed_;
  uint64_t connections_seen_ = 0;
  Counter* requests_ = nullptr;
  Counter* bytes_ = nullptr;
  Counter* responses_2xx_ = nullptr;
  Counter* responses_4xx_ = nullptr;
  Counter* responses_5xx_ = nullptr;
  Counter* responses_other_ = nullptr;
  Counter* transport_errors_ = nullptr;
  Counter* timeouts_ = nullptr;
  Counter* connections_ = nullptr;
};

}  // namespace ingestd::plugins

#include "http_sink.h"

#include <utility>

#include <fmt/format.h>

#include "http_client.h"

namespace ingestd::plugins {

HttpSink::HttpSink(const Options& options, Diagnostics& diag)
    : format_(http::format_from(options.get_string("format", "ndjson"))),
      encoding_(json::encoding_from(options.get_string("encoding"))),
      gzip_(options.get_bool("gzip")),
      max_body_(options.get_size("max_body_size", 0)),
      url_text_(options.get_string("url")) {
  bool ok = true;
  std::string error;
  std::optional<http::Url> url = http::parse_url(url_text_, error);
  if (!url) {
    diag.error("url", error);
    ok = false;
  }
  http::Headers headers;
  if (!http::read_headers(options.get_object("headers"), {}, "", headers, diag)) ok = false;
  if (ok)
    client_ = std::make_unique<http::HttpClient>(
        std::move(*url), std::move(headers), options.get_duration_ns("timeout", 10'000'000'000));
}

HttpSink::~HttpSink() = default;

bool HttpSink::start(Context& ctx) {
  requests_ = &ctx.counter("requests");
  bytes_ = &ctx.counter("bytes");
  responses_2xx_ = &ctx.counter("responses_2xx");
  responses_4xx_ = &ctx.counter("responses_4xx");
  responses_5xx_ = &ctx.counter("responses_5xx");
  responses_other_ = &ctx.counter("responses_other");
  transport_errors_ = &ctx.counter("transport_errors");
  timeouts_ = &ctx.counter("timeouts");
  connections_ = &ctx.counter("connections");
  ctx.logf(LogLevel::kInfo, "posting to {}", url_text_);
  return true;
}

SinkResult HttpSink::write(Context& ctx, const Batch& batch) {
  const size_t total = batch.size();
  size_t next = 0;
  while (next < total) {
    const size_t end = http::build_body(body_, batch, next, format_, encoding_, max_body_);
    SinkResult r = send(ctx);
    if (r.status != SinkStatus::kOk) {
      if (next != 0)
        r.error += fmt::format(" (request for events {}-{} of {}; the earlier ones were delivered)",
                               next + 1, end, total);
      return r;
    }
    next = end;
  }
  return SinkResult::ok();
}

SinkResult HttpSink::send(Context& ctx) {
  std::string* payload = &body_;
  if (gzip_) {
    std::string error;
    if (!http::gzip(body_, compressed_, error)) return SinkResult::retryable(error);
    payload = &compressed_;
  }
  const size_t size = payload->size();
  requests_->add();
  http::Exchange ex = client_->post(*payload, http::content_type(format_), gzip_);
  if (const uint64_t opened = client_->connections(); opened != connections_seen_) {
    connections_->add(opened - connections_seen_);
    connections_seen_ = opened;
  }
  if (!ex.answered) {
    transport_errors_->add();
    if (ex.timed_out) timeouts_->add();
    return SinkResult::retryable(std::move(ex.error));
  }
  bytes_->add(size);
  const int status = ex.response.status;
  Counter* by_class = status >= 200 && status < 300   ? responses_2xx_
                      : status >= 400 && status < 500 ? responses_4xx_
                      : status >= 500 && status < 600 ? responses_5xx_
                                                      : responses_other_;
  by_class->add();
  return http::classify(ex.response, ctx.clock().now_ns());
}

}  // namespace ingestd::plugins

#include "sse_source.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <utility>

#include <fmt/format.h>

namespace ingestd::plugins {

namespace {

constexpr int64_t kStopWaitNs = 5'000'000'000;
constexpr int64_t kPollNs = 100'000'000;

}  // namespace

SseSource::SseSource(const Options& options, Diagnostics& diag)
    : url_text_(options.get_string("url")),
      types_(options.get_list("events")),
      framer_(options.get_size("max_event_size", 1 << 20)) {
  bool ok = true;
  std::string error;
  if (std::optional<http::Url> url = http::parse_url(url_text_, error)) {
    target_.url = std::move(*url);
  } else {
    diag.error("url", error);
    ok = false;
  }
  if (!http::read_headers(options.get_object("headers"),
                          {"Connection", "Content-Length", "Transfer-Encoding", "Last-Event-ID"},
                          "is set by the source for each connection", target_.headers, diag))
    ok = false;
  target_.connect_timeout_ns = options.get_duration_ns("connect_timeout", 10'000'000'000);
  target_.read_timeout_ns = options.get_duration_ns("read_timeout", 60'000'000'000);
  const Options& reconnect = options.get_object("reconnect");
  target_.backoff.initial_ns = reconnect.get_duration_ns("initial", 1'000'000'000);
  target_.backoff.max_ns = reconnect.get_duration_ns("max", 30'000'000'000);
  target_.backoff.jitter = reconnect.get_double("jitter", 0.2);
  if (target_.backoff.max_ns < target_.backoff.initial_ns) {
    diag.error("reconnect.max", "must be at least reconnect.initial");
    ok = false;
  }
  target_.stop_at_eof = options.get_bool("stop_at_eof", false);
  const std::string id = options.get_string("last_event_id");
  if (!http::header_value_problem(id).empty()) {
    diag.error("last_event_id", "must not contain a line break or NUL");
    ok = false;
  }
  framer_.set_last_event_id(id);
  valid_ = ok;
}

bool SseSource::start(Context& ctx) {
  connections_ = &ctx.counter("connections");
  reconnects_ = &ctx.counter("reconnects");
  events_ = &ctx.counter("events");
  bytes_ = &ctx.counter("bytes");
  dropped_ = &ctx.counter("dropped");
  filtered_ = &ctx.counter("filtered");
  errors_connect_ = &ctx.counter("errors_connect");
  errors_timeout_ = &ctx.counter("errors_timeout");
  errors_status_ = &ctx.counter("errors_status");
  errors_content_type_ = &ctx.counter("errors_content_type");
  errors_read_ = &ctx.counter("errors_read");
  closed_ = &ctx.counter("closed");
  limits_ = ctx.batch_limits();
  ctx_ = &ctx;
  return valid_;
}

void SseSource::run(Context& ctx, Output& out) {
  ctx_ = &ctx;
  ctx.logf(LogLevel::kInfo, "reading the event stream {}", url_text_);
  std::mt19937_64 random(std::random_device{}());
  sse::Loop loop(
      ctx.io(), target_,
      [random]() mutable { return std::uniform_real_distribution<>(0, 1)(random); }, out, *this);
  loop.start();
  // The loop ends by itself only with stop_at_eof.
  while (!loop.wait_for(kPollNs) && !ctx.stopping()) {
  }
  loop.stop();
  while (!loop.wait_for(kStopWaitNs))
    ctx.log(LogLevel::kWarn, "the connection in progress has not ended yet; waiting for it");
  if (std::string e = loop.error(); !e.empty())
    ctx.logf(LogLevel::kError, "the stream loop failed: {}", e);
}

std::string SseSource::last_event_id() {
  return framer_.last_event_id();
}

void SseSource::on_attempt(int64_t) {
  if (attempts_++ > 0) reconnects_->add();
}

void SseSource::on_connected() {
  connections_->add();
  connected_ = true;
  if (logged_end_ && *logged_end_ != sse::End::kClosed)
    ctx_->logf(LogLevel::kInfo, "connected to {} again after {} failed attempt(s)", url_text_,
               failed_in_a_row_);
  logged_end_.reset();
  logged_status_ = 0;
  failed_in_a_row_ = 0;
}

void SseSource::on_bytes(std::string_view bytes, bool more, std::vector<BatchPtr>& ready) {
  read_time_ns_ = ctx_->clock().now_ns();
  read_bytes_ = bytes.size();
  ready_ = &ready;
  bytes_->add(bytes.size());
  framer_.feed(bytes, *this);
  if (!more) finish_batch();
  ready_ = nullptr;
  if (const uint64_t dropped = framer_.dropped(); dropped != framer_dropped_) {
    dropped_->add(dropped - framer_dropped_);
    framer_dropped_ = dropped;
  }
}

void SseSource::on_event(const sse::Event& event) {
  if (!types_.empty()) {
    const std::string_view type = event.type.empty() ? "message" : event.type;
    if (std::find(types_.begin(), types_.end(), type) == types_.end()) {
      filtered_->add();
      return;
    }
  }
  if (!batch_) {
    batch_ = std::make_unique<Batch>(std::min<size_t>(limits_.max_bytes, read_bytes_ + 1024));
    batch_->reserve(std::min<size_t>(limits_.max_events, 1024), 0);
    batch_->ingest_time_ns = read_time_ns_;
    batch_->origin.component = std::string(ctx_->name());
    chunk_left_ = 0;
  }
  const size_t n = event.data.size();
  if (chunk_left_ < n + 1) {
    // The events of a read fit in the read's bytes: their data is shorter than the lines that
    // framed it. One that came in over several reads may need more.
    chunk_left_ = std::max(n + 1, std::min<size_t>(read_bytes_, limits_.max_bytes));
    chunk_ = batch_->allocate(chunk_left_);
  }
  if (n) std::memcpy(chunk_, event.data.data(), n);
  chunk_[n] = '\n';
  batch_->add({chunk_, n}, read_time_ns_);
  chunk_ += n + 1;
  chunk_left_ -= n + 1;
  ++batch_events_;
  if (batch_->size() >= limits_.max_events || batch_->raw_bytes() >= limits_.max_bytes)
    finish_batch();
}

void SseSource::finish_batch() {
  if (!batch_) return;
  chunk_left_ = 0;
  events_->add(batch_events_);
  batch_events_ = 0;
  ready_->push_back(std::move(batch_));
}

Counter& SseSource::end_counter(sse::End end) {
  switch (end) {
    case sse::End::kConnect:
      return *errors_connect_;
    case sse::End::kTimeout:
      return *errors_timeout_;
    case sse::End::kStatus:
      return *errors_status_;
    case sse::End::kContentType:
      return *errors_content_type_;
    case sse::End::kClosed:
      return *closed_;
    default:
      return *errors_read_;
  }
}

std::optional<int64_t> SseSource::on_end(sse::End end, int status, const std::string& error) {
  framer_.end_of_stream();
  end_counter(end).add();
  if (!connected_) ++failed_in_a_row_;
  connected_ = false;
  if (!logged_end_ || *logged_end_ != end || status != logged_status_) {
    const bool closed = end == sse::End::kClosed;
    ctx_->logf(closed ? LogLevel::kInfo : LogLevel::kWarn,
               "{} (counted in {}{}; logged again when this changes); {} Last-Event-ID '{}'", error,
               closed ? "" : "errors_", sse::end_name(end),
               closed && target_.stop_at_eof ? "stop_at_eof: ending at" : "reconnecting with",
               framer_.last_event_id());
    logged_end_ = end;
    logged_status_ = status;
  }
  if (std::optional<uint64_t> ms = framer_.take_retry_ms())
    return static_cast<int64_t>(std::min<uint64_t>(*ms, INT64_MAX / 1'000'000) * 1'000'000);
  return std::nullopt;
}

}  // namespace ingestd::plugins

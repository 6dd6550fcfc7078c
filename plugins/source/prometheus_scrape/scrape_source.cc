#include "scrape_source.h"

#include <algorithm>
#include <memory>
#include <utility>

#include <fmt/format.h>

namespace ingestd::plugins {

namespace {

constexpr int64_t kStopWaitNs = 5'000'000'000;
constexpr size_t kArenaBytes = 512;

}  // namespace

PrometheusScrapeSource::PrometheusScrapeSource(const Options& options, Diagnostics& diag)
    : url_text_(options.get_string("url")),
      interval_ns_(options.get_duration_ns("interval", 15'000'000'000)) {
  bool ok = true;
  std::string error;
  std::optional<http::Url> url = http::parse_url(url_text_, error);
  if (url) {
    target_.url = std::move(*url);
  } else {
    diag.error("url", error);
    ok = false;
  }
  if (!http::read_headers(options.get_object("headers"),
                          {"Connection", "Content-Length", "Transfer-Encoding", "Content-Encoding",
                           "Accept-Encoding"},
                          "is set by the source for each request", target_.headers, diag))
    ok = false;
  target_.timeout_ns = std::min(options.get_duration_ns("timeout", 10'000'000'000), interval_ns_);
  target_.max_body_size = options.get_size("max_body_size", 10 << 20);
  target_.gzip = options.get_bool("gzip", true);
  valid_ = ok;
}

bool PrometheusScrapeSource::start(Context& ctx) {
  scrapes_ = &ctx.counter("scrapes");
  failures_connect_ = &ctx.counter("failures_connect");
  failures_timeout_ = &ctx.counter("failures_timeout");
  failures_status_ = &ctx.counter("failures_status");
  failures_body_too_large_ = &ctx.counter("failures_body_too_large");
  failures_read_ = &ctx.counter("failures_read");
  bytes_ = &ctx.counter("bytes");
  return valid_;
}

void PrometheusScrapeSource::run(Context& ctx, Output& out) {
  ctx.logf(LogLevel::kInfo, "scraping {} every {} ms", url_text_, interval_ns_ / 1'000'000);
  scrape::Loop loop(ctx.io(), target_, interval_ns_, ctx.clock(), out,
                    [this, &ctx](scrape::Outcome& o) { return handle(ctx, o); });
  loop.start();
  while (!ctx.wait_for_stop(kStopWaitNs)) {
  }
  loop.stop();
  while (!loop.wait_for(kStopWaitNs))
    ctx.log(LogLevel::kWarn, "the scrape in progress has not ended yet; waiting for it");
  if (std::string e = loop.error(); !e.empty())
    ctx.logf(LogLevel::kError, "the scrape loop failed: {}", e);
}

Counter& PrometheusScrapeSource::failure_counter(scrape::Failure failure) {
  switch (failure) {
    case scrape::Failure::kTimeout:
      return *failures_timeout_;
    case scrape::Failure::kStatus:
      return *failures_status_;
    case scrape::Failure::kBodyTooLarge:
      return *failures_body_too_large_;
    case scrape::Failure::kRead:
      return *failures_read_;
    default:
      return *failures_connect_;
  }
}

BatchPtr PrometheusScrapeSource::handle(Context& ctx, scrape::Outcome& o) {
  scrapes_->add();
  if (o.failure != scrape::Failure::kNone) {
    failure_counter(o.failure).add();
    ++failed_in_a_row_;
    if (o.failure != logged_failure_ || o.status != logged_status_) {
      ctx.logf(LogLevel::kWarn,
               "scraping {} fails: {} (counted in failures_{}; logged again when the failure "
               "changes or a scrape succeeds)",
               url_text_, o.error, scrape::failure_name(o.failure));
      logged_failure_ = o.failure;
      logged_status_ = o.status;
    }
    return nullptr;
  }
  if (logged_failure_ != scrape::Failure::kNone)
    ctx.logf(LogLevel::kInfo, "scraping {} succeeds again after {} failed scrape(s)", url_text_,
             failed_in_a_row_);
  logged_failure_ = scrape::Failure::kNone;
  logged_status_ = 0;
  failed_in_a_row_ = 0;

  const size_t size = o.body.size();
  bytes_->add(size);
  // The batch keeps the body alive instead of copying it; views into it need the padding.
  o.body.append(Batch::kPadding, '\0');
  auto body = std::make_shared<const std::string>(std::move(o.body));
  auto batch = std::make_unique<Batch>(kArenaBytes);
  batch->ingest_time_ns = o.start_ns;
  batch->origin.component = std::string(ctx.name());
  batch->keep_alive(body, body->size());
  Event& e = batch->add(std::string_view(body->data(), size), o.start_ns);
  batch->append_field(e, "url", Value::string(batch->copy_unpadded(url_text_)));
  batch->append_field(e, "scrape_time", Value::integer(o.start_ns / 1'000'000));
  batch->append_field(e, "scrape_duration",
                      Value::number(static_cast<double>(o.duration_ns) / 1e9));
  return batch;
}

}  // namespace ingestd::plugins

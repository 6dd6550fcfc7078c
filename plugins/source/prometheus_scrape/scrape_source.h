// source/prometheus_scrape: a Prometheus /metrics endpoint, scraped every interval.
#pragma once

#include <cstdint>
#include <string>

#include "ingestd/component.h"
#include "ingestd/schema.h"
#include "scrape_loop.h"

namespace ingestd::plugins {

inline constexpr const char* kPrometheusScrapeSourceDoc =
    "GETs a Prometheus text endpoint (/metrics) every interval and emits each answer's body as "
    "one record, with the target's url and the scrape time; put parse/prometheus after it to get "
    "one event per sample. Failed scrapes (connect, timeout, HTTP status, body too large) are "
    "counted by reason and logged when the failure changes.";

inline constexpr OptionSpec kPrometheusScrapeSourceOptions[] = {
    {.name = "url",
     .type = OptionType::kString,
     .required = true,
     .doc = "What to scrape: http://host[:port][/path][?query], e.g. "
            "http://127.0.0.1:9100/metrics. https is not supported (scrape through a local TLS "
            "proxy); credentials go in `headers`."},
    {.name = "interval",
     .type = OptionType::kDuration,
     .default_value = "15s",
     .min = "10ms",
     .doc = "How often to scrape: each scrape begins one interval after the previous one began. "
            "Intervals missed while downstream was full are skipped."},
    {.name = "timeout",
     .type = OptionType::kDuration,
     .default_value = "10s",
     .min = "1ms",
     .doc = "The longest one scrape may take, connecting, sending and reading the whole answer "
            "together; at most `interval` (a longer one is cut to it). A scrape that takes longer "
            "counts in `failures_timeout`."},
    {.name = "headers",
     .type = OptionType::kStringMap,
     .doc = "Extra request headers, name: value (a list sends the header once per value), e.g. "
            "`X-Algo-API-Token: ${TOKEN}`. They replace the defaults of Host, User-Agent "
            "(ingestd-prometheus-scrape) and Accept (text/plain;version=0.0.4); Connection, "
            "Content-Length, Transfer-Encoding, Content-Encoding and Accept-Encoding (see `gzip`) "
            "are the source's."},
    {.name = "max_body_size",
     .type = OptionType::kSize,
     .default_value = "10MiB",
     .min = "1KiB",
     .doc = "The largest body taken, as sent and once decompressed; a larger answer is dropped "
            "and counted in `failures_body_too_large`."},
    {.name = "gzip",
     .type = OptionType::kBool,
     .default_value = "true",
     .doc = "Ask for a gzip-compressed answer (Accept-Encoding: gzip) and decompress it. An "
            "answer in another Content-Encoding, or corrupt gzip, counts in `failures_read`."},
};

// Scrapes one target with a scrape::Loop on the daemon's shared io_context (Context::io()) and
// emits one record per successful scrape.
//
// Contract:
// - The factory checks the url (http:// only), the headers and the durations, and does no I/O.
//   start() looks up the counters; run() starts the loop, waits for ctx.stopping(), stops it and
//   returns once it has ended (promptly: the scrape or wait in progress is cancelled).
// - A record's raw bytes are the body, exactly as answered (in a buffer the batch keeps alive,
//   not copied); its time and the batch's ingest time are the wall-clock time the scrape began;
//   its fields are url (as configured), scrape_time (that time, epoch ms) and scrape_duration
//   (seconds, a double). Batches carry no acks: a scrape is not delivered again.
// - Failures emit nothing. Each is counted by reason; the first failure is logged at warn, and
//   again only when the reason (or the HTTP status) changes; the first success after failures
//   is logged at info with how many failed.
// - Threading: run() on the source's thread; handle() on the loop's strand, one call at a time.
// Counters: scrapes (attempts), failures_connect (resolve or connect), failures_timeout,
// failures_status (an answer other than 200), failures_body_too_large, failures_read (the
// exchange broke after connecting), bytes (bodies emitted).
class PrometheusScrapeSource final : public Source {
 public:
  PrometheusScrapeSource(const Options& options, Diagnostics& diag);

  bool start(Context& ctx) override;
  void run(Context& ctx, Output& out) override;

  // What one scrape's outcome becomes: a batch to push, or nullptr. Counts and logs.
  BatchPtr handle(Context& ctx, scrape::Outcome& outcome);

 private:
  Counter& failure_counter(scrape::Failure failure);

  std::string url_text_;
  scrape::Target target_;
  int64_t interval_ns_;
  bool valid_ = false;

  Counter* scrapes_ = nullptr;
  Counter* failures_connect_ = nullptr;
  Counter* failures_timeout_ = nullptr;
  Counter* failures_status_ = nullptr;
  Counter* failures_body_too_large_ = nullptr;
  Counter* failures_read_ = nullptr;
  Counter* bytes_ = nullptr;

  // The failure state last logged: none while scrapes succeed.
  scrape::Failure logged_failure_ = scrape::Failure::kNone;
  int logged_status_ = 0;
  uint64_t failed_in_a_row_ = 0;
};

}  // namespace ingestd::plugins

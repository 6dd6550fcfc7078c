// source/sse: a server-sent-events stream (text/event-stream over HTTP), one record per event.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ingestd/component.h"
#include "ingestd/schema.h"
#include "sse_framer.h"
#include "sse_stream.h"

namespace ingestd::plugins {

inline constexpr const char* kSseSourceDoc =
    "Reads a server-sent-events stream (GET, text/event-stream) and emits each event's data as "
    "one record (put parse/json after it for `data: {json}` streams). Reconnects after every end "
    "or failure with exponential backoff and jitter, sending Last-Event-ID so that the server can "
    "resume; honours the server's `retry:`. Failures are counted by kind.";

inline constexpr OptionSpec kSseReconnectOptions[] = {
    {.name = "initial",
     .type = OptionType::kDuration,
     .default_value = "1s",
     .min = "0ms",
     .doc = "The first wait before reconnecting, until the server sends `retry:` (which then "
            "takes its place)."},
    {.name = "max",
     .type = OptionType::kDuration,
     .default_value = "30s",
     .min = "1ms",
     .doc = "The longest wait: it doubles per failed attempt up to this (or up to the server's "
            "`retry:` when that is longer)."},
    {.name = "jitter",
     .type = OptionType::kDouble,
     .default_value = "0.2",
     .min = "0",
     .max = "1",
     .doc = "Each wait is shortened by a random part of up to this fraction of itself, so that "
            "many clients do not reconnect in step."},
};

inline constexpr OptionSpec kSseSourceOptions[] = {
    {.name = "url",
     .type = OptionType::kString,
     .required = true,
     .doc = "The stream: http://host[:port][/path][?query]. https is not supported (read "
            "through a local TLS proxy); credentials go in `headers`."},
    {.name = "headers",
     .type = OptionType::kStringMap,
     .doc = "Extra request headers, name: value (a list sends the header once per value). They "
            "replace the defaults of Host, User-Agent (ingestd-sse), Accept (text/event-stream) "
            "and Cache-Control (no-cache); Connection, Content-Length, Transfer-Encoding and "
            "Last-Event-ID are the source's."},
    {.name = "connect_timeout",
     .type = OptionType::kDuration,
     .default_value = "10s",
     .min = "1ms",
     .doc = "Resolving, connecting, sending the request and reading the answer's header share "
            "this deadline; past it the attempt counts in `errors_timeout`."},
    {.name = "read_timeout",
     .type = OptionType::kDuration,
     .default_value = "60s",
     .min = "1ms",
     .doc = "A stream that sends no byte for this long (not even a `:` comment as keep-alive) is "
            "taken as stalled: counted in `errors_timeout`, closed and reconnected."},
    {.name = "reconnect",
     .type = OptionType::kObject,
     .doc = "The wait before each reconnect.",
     .children = kSseReconnectOptions,
     .child_count = std::size(kSseReconnectOptions)},
    {.name = "max_event_size",
     .type = OptionType::kSize,
     .default_value = "1MiB",
     .min = "16",
     .doc = "The largest event taken: a longer line, or data that grows past this, drops the "
            "event (counted in `dropped`); reading resumes at the next event."},
    {.name = "events",
     .type = OptionType::kStringList,
     .doc = "Keep only events of these types (the `event:` field; `message` for events without "
            "one). Empty: keep all. Others are counted in `filtered`."},
    {.name = "last_event_id",
     .type = OptionType::kString,
     .default_value = "\"\"",
     .doc = "The Last-Event-ID sent by the first connection (later ones send the id of the last "
            "event received). Empty: none."},
    {.name = "stop_at_eof",
     .type = OptionType::kBool,
     .default_value = "false",
     .doc = "End the source (a finite run, e.g. a benchmark or a batch job) when the server ends "
            "the stream cleanly: the last chunk of a chunked body, or EOF of a body without "
            "length. Broken streams and failures still reconnect."},
};

// Reads one event stream with an sse::Loop on the daemon's shared io_context (Context::io()) and
// emits one record per event.
//
// Contract:
// - The factory checks the url (http:// only), the headers and the options, and does no I/O.
//   start() looks up the counters; run() starts the loop, waits for ctx.stopping() (or for the
//   loop to end with stop_at_eof), stops it and returns once it has ended: promptly, as the
//   connection, wait or push in progress is cancelled.
// - A record's raw bytes are one event's data (its `data:` lines joined with "\n"), copied into
//   the batch's arena; its time and the batch's ingest time are the wall clock when the bytes
//   were read. No fields, no acks: SSE has no delivery confirmation to give back.
// - Batches: filled up to the core's batch limits (events, bytes) while more of the stream is
//   already received, and sent as soon as nothing more is (no linger: a slow stream's events go
//   at once); pushed before the next read, so a backed-up pipeline stops the reading and TCP
//   pushes back on the server; memory stays within one batch and one read.
// - Reconnects keep the last event id and the framer's retry time; a partly received event is
//   discarded (the server sends it again after its id). Downstream sees nothing of a reconnect.
// - Each end of a connection is counted by kind and logged at warn when the kind (or the HTTP
//   status) changes; the first connection after failures is logged at info.
// - Threading: run() on the source's thread; the Listener calls on the loop's strand.
// Counters: connections (200 event streams), reconnects, events, bytes (body bytes read),
// dropped (oversized events), filtered (not in `events`), errors_connect, errors_timeout,
// errors_status, errors_content_type, errors_read, closed (clean ends by the server).
class SseSource final : public Source, private sse::Listener, private sse::Handler {
 public:
  SseSource(const Options& options, Diagnostics& diag);

  bool start(Context& ctx) override;
  void run(Context& ctx, Output& out) override;

  // sse::Listener, public for tests.
  std::string last_event_id() override;
  void on_attempt(int64_t wait_ns) override;
  void on_connected() override;
  void on_bytes(std::string_view bytes, bool more, std::vector<BatchPtr>& ready) override;
  std::optional<int64_t> on_end(sse::End end, int status, const std::string& error) override;

 private:
  void on_event(const sse::Event& event) override;  // sse::Handler: into batch_
  void finish_batch();
  Counter& end_counter(sse::End end);

  std::string url_text_;
  sse::Target target_;
  std::vector<std::string> types_;  // `events`
  bool valid_ = false;
  sse::Framer framer_;

  Context* ctx_ = nullptr;
  BatchLimits limits_;
  int64_t read_time_ns_ = 0;
  size_t read_bytes_ = 0;  // of the read being framed
  BatchPtr batch_;
  // Where the next event's data goes: the unused end of a padded arena buffer of batch_. Events
  // are written one after another, each followed by '\n', so that a JSON parser reads a whole
  // buffer of them as one document stream.
  char* chunk_ = nullptr;
  size_t chunk_left_ = 0;
  std::vector<BatchPtr>* ready_ = nullptr;
  uint64_t framer_dropped_ = 0;  // framer_.dropped() already counted
  uint64_t attempts_ = 0;
  uint64_t batch_events_ = 0;  // events in batch_, counted when it is ready

  Counter* connections_ = nullptr;
  Counter* reconnects_ = nullptr;
  Counter* events_ = nullptr;
  Counter* bytes_ = nullptr;
  Counter* dropped_ = nullptr;
  Counter* filtered_ = nullptr;
  Counter* errors_connect_ = nullptr;
  Counter* errors_timeout_ = nullptr;
  Counter* errors_status_ = nullptr;
  Counter* errors_content_type_ = nullptr;
  Counter* errors_read_ = nullptr;
  Counter* closed_ = nullptr;

  // The failure state last logged: kClosed while connections succeed.
  std::optional<sse::End> logged_end_;
  int logged_status_ = 0;
  uint64_t failed_in_a_row_ = 0;  // attempts that did not reach a stream
  bool connected_ = false;        // the current attempt reached a stream
};

}  // namespace ingestd::plugins

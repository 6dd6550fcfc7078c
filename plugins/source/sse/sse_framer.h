// source/sse: the event-stream format (WHATWG HTML, "Server-sent events", interpreting an event
// stream), cut into events. Pure: no I/O, no Beast, no allocation per event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ingestd::plugins::sse {

// One dispatched event. The views are valid only during the Handler call.
struct Event {
  std::string_view data;  // the data lines joined with "\n"
  std::string_view type;  // the `event:` field; empty for the default type ("message")
  std::string_view id;    // the last event id as of this event (ids persist across events)
};

// Receives the events a Framer dispatches.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void on_event(const Event& event) = 0;
};

// Cuts an event stream, fed in pieces of any size, into events.
//
// Contract:
// - feed() takes the next bytes of the stream, however they were split: the same bytes give the
//   same events in the same order whatever the pieces. A line cut by the end of a piece is held
//   (copied) until its end arrives; everything else is read in place.
// - The rules are the WHATWG ones: one UTF-8 BOM at the start of the stream is skipped; lines end
//   with CRLF, LF or CR (a CR ending one piece and an LF starting the next are one line end); a
//   line starting with ':' is a comment; `name:value` loses one space after the colon; a line
//   without a colon is a field with an empty value; `data` appends a line to the data (joined
//   with "\n"), `event` sets the type, `id` the last event id (ignored when it holds a NUL),
//   `retry` the reconnection time in ms (ignored unless all ASCII digits); other fields are
//   ignored; a blank line dispatches the event when it has data (a `data` line, even empty) and
//   commits its id either way. Bytes are not checked as UTF-8: they pass through as they came.
// - Limits: a line longer than `max_event_size`, or data that would grow past it, drops the
//   event: its data is discarded, the rest of it up to the next blank line is skipped (its `id`,
//   `event` and `retry` lines still apply), and that blank line counts one in dropped() instead
//   of dispatching. Memory stays within about twice max_event_size.
// - end_of_stream() discards a pending event and partial line (a stream that ends mid-event did
//   not send it) and readies the framer for a new stream (a reconnect): BOM check again, the
//   last event id and the retry time kept.
// - The Handler runs inside feed(), once per event; views it gets die when it returns.
// Not thread-safe: one owner feeds it.
class Framer {
 public:
  explicit Framer(size_t max_event_size = 1 << 20);

  void feed(std::string_view bytes, Handler& handler);
  void end_of_stream();

  // The last event id committed by a dispatch (what a reconnect sends as Last-Event-ID).
  const std::string& last_event_id() const { return last_id_; }
  // Starts from a known id, as if an event had carried it (a configured initial id).
  void set_last_event_id(std::string_view id);
  // The latest `retry:` value in ms, once; nullopt when none came since the last call.
  std::optional<uint64_t> take_retry_ms();

  uint64_t events() const { return events_; }    // dispatched
  uint64_t dropped() const { return dropped_; }  // dropped as oversized

 private:
  void consume(const char* begin, const char* end, Handler& handler);
  // One complete line, without its end; `stable` when it lies in the caller's piece (not in
  // partial_), so that a data view of it may be kept until the piece ends.
  void line(std::string_view text, bool stable, Handler& handler);
  void field(std::string_view name, std::string_view value, bool stable);
  void append_data(std::string_view value, bool stable);
  void dispatch(Handler& handler);
  void materialize();
  void drop_event();

  size_t max_event_size_;
  // The line cut by the end of the previous piece (or skipped while oversized).
  std::string partial_;
  bool skipping_line_ = false;  // the current line is oversized: skip to its end
  bool cr_pending_ = false;     // the previous piece ended with CR: skip one LF
  unsigned bom_matched_ = 0;    // bytes of the BOM seen at the start of the stream
  bool bom_done_ = false;       // the start of the stream is past
  // The pending event.
  std::string data_;       // joined data, when not in view_
  std::string_view view_;  // the data when it is one line of the current piece
  bool in_view_ = false;
  bool has_data_ = false;
  bool dropping_ = false;  // oversized: skip to the next blank line
  std::string type_;
  std::string id_;       // the last event id buffer
  std::string last_id_;  // committed at dispatch
  std::optional<uint64_t> retry_ms_;
  uint64_t events_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace ingestd::plugins::sse

// source/sse's framer on arbitrary streams: never crashes or reads out of bounds, and cuts the
// same events whatever the pieces. The first two bytes pick max_event_size (1..256) and the piece
// size (1..256); the rest is the stream, fed whole to one framer and in pieces to another, which
// must agree on every event (data, type, id), the drops, the last id and the retry time. No
// event's data is longer than max_event_size.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "source/sse/sse_framer.h"

namespace {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

class Record final : public ingestd::plugins::sse::Handler {
 public:
  explicit Record(size_t max) : max_(max) {}
  void on_event(const ingestd::plugins::sse::Event& e) override {
    check(e.data.size() <= max_, "an event's data is within max_event_size");
    events.emplace_back(std::string(e.data) + '\x1f' + std::string(e.type) + '\x1f' +
                        std::string(e.id));
  }
  std::vector<std::string> events;

 private:
  size_t max_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max = size_t{data[0]} + 1;
  const size_t piece = size_t{data[1]} + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  ingestd::plugins::sse::Framer whole(max), cut(max);
  Record a(max), b(max);
  whole.feed(stream, a);
  for (size_t i = 0; i < stream.size(); i += piece) cut.feed(stream.substr(i, piece), b);
  check(a.events == b.events, "the same events whatever the pieces");
  check(whole.events() == a.events.size(), "events() counts the dispatched events");
  check(whole.dropped() == cut.dropped(), "the same drops whatever the pieces");
  check(whole.last_event_id() == cut.last_event_id(), "the same last id");
  check(whole.take_retry_ms() == cut.take_retry_ms(), "the same retry time");
  // After the end of the stream the framer reads a new one as a fresh framer would, with the id.
  whole.end_of_stream();
  ingestd::plugins::sse::Framer fresh(max);
  fresh.set_last_event_id(whole.last_event_id());
  Record c(max), d(max);
  whole.feed(stream, c);
  fresh.feed(stream, d);
  check(c.events == d.events, "a reconnect starts a clean stream");
  return 0;
}

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "source/sse/sse_framer.h"

namespace ingestd::plugins::sse {
namespace {

using namespace std::literals;

struct Got {
  std::string data;
  std::string type;
  std::string id;
  bool operator==(const Got&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Got& g) {
  return os << "{data=\"" << g.data << "\" type=\"" << g.type << "\" id=\"" << g.id << "\"}";
}

class Collect final : public Handler {
 public:
  void on_event(const Event& e) override {
    got.push_back({std::string(e.data), std::string(e.type), std::string(e.id)});
  }
  std::vector<Got> got;
};

struct Outcome {
  std::vector<Got> events;
  uint64_t dropped = 0;
  std::string last_id;
  std::optional<uint64_t> retry;
};

// Feeds `stream` in pieces of `piece` bytes (0: whole).
Outcome feed(std::string_view stream, size_t piece = 0, size_t max_event = 1 << 20) {
  Framer f(max_event);
  Collect c;
  if (piece == 0) piece = std::max<size_t>(stream.size(), 1);
  for (size_t i = 0; i < stream.size(); i += piece) f.feed(stream.substr(i, piece), c);
  EXPECT_EQ(f.events(), c.got.size());
  return {std::move(c.got), f.dropped(), f.last_event_id(), f.take_retry_ms()};
}

// The events of `stream` fed whole, after checking that every piece size, and every cut into
// two pieces, gives the same.
Outcome feed_every_way(std::string_view stream, size_t max_event = 1 << 20) {
  Outcome whole = feed(stream, 0, max_event);
  for (size_t piece = 1; piece < stream.size(); ++piece) {
    Outcome r = feed(stream, piece, max_event);
    EXPECT_EQ(r.events, whole.events) << "pieces of " << piece;
    EXPECT_EQ(r.dropped, whole.dropped) << "pieces of " << piece;
    EXPECT_EQ(r.last_id, whole.last_id) << "pieces of " << piece;
    EXPECT_EQ(r.retry, whole.retry) << "pieces of " << piece;
  }
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    Framer f(max_event);
    Collect c;
    f.feed(stream.substr(0, cut), c);
    f.feed(stream.substr(cut), c);
    EXPECT_EQ(c.got, whole.events) << "cut at " << cut;
    EXPECT_EQ(f.dropped(), whole.dropped) << "cut at " << cut;
  }
  return whole;
}

std::vector<Got> data_only(std::initializer_list<const char*> data) {
  std::vector<Got> out;
  for (const char* d : data) out.push_back({d, "", ""});
  return out;
}

TEST(SseFramerTest, DataLosesOneSpaceAfterTheColon) {
  Outcome r = feed_every_way("data: a\n\ndata:b\n\ndata:  c\n\ndata:\n\n");
  EXPECT_EQ(r.events, data_only({"a", "b", " c", ""}));
}

TEST(SseFramerTest, DataLinesAreJoinedWithNewlines) {
  Outcome r = feed_every_way("data: one\ndata: two\ndata:\ndata: four\n\ndata: {\"x\":1}\n\n");
  EXPECT_EQ(r.events, data_only({"one\ntwo\n\nfour", "{\"x\":1}"}));
}

TEST(SseFramerTest, CommentsAndUnknownFieldsAreIgnored) {
  Outcome r = feed_every_way(": hello\n:\ndata: a\n: inside\nfoo: bar\nDATA: no\n\n:keepalive\n\n");
  EXPECT_EQ(r.events, data_only({"a"}));
}

TEST(SseFramerTest, EventTypeAppliesToOneEvent) {
  Outcome r =
      feed_every_way("event: play\ndata: 1\n\ndata: 2\n\nevent:stop\nevent: end\ndata: 3\n\n");
  EXPECT_EQ(r.events, (std::vector<Got>{{"1", "play", ""}, {"2", "", ""}, {"3", "end", ""}}));
}

TEST(SseFramerTest, IdPersistsAndIsCommittedByTheBlankLine) {
  Outcome r = feed_every_way(
      "id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 9\n\nid: x\0y\ndata: d\n\nid: 10\n"sv);
  EXPECT_EQ(r.events,
            (std::vector<Got>{{"a", "", "7"}, {"b", "", "7"}, {"c", "", ""}, {"d", "", "9"}}));
  // "id: 9" with no data still became the last id; the NUL id was ignored; "id: 10" was never
  // dispatched.
  EXPECT_EQ(r.last_id, "9");
}

TEST(SseFramerTest, RetryTakesDigitsOnly) {
  EXPECT_EQ(feed_every_way("retry: 1500\n\n").retry, 1500u);
  EXPECT_EQ(feed_every_way("retry: 1500\nretry: 20\n").retry, 20u);
  EXPECT_EQ(feed_every_way("retry: 1500\nretry: 2s\nretry: -1\nretry:\nretry: 1 \n").retry, 1500u);
  EXPECT_EQ(feed_every_way("retry:  100\n").retry, std::nullopt);  // " 100" is not all digits
  EXPECT_EQ(feed_every_way("retry: 99999999999999999999999\n").retry, UINT64_MAX);
  Framer f;
  Collect c;
  f.feed("retry: 5\n", c);
  EXPECT_EQ(f.take_retry_ms(), 5u);
  EXPECT_EQ(f.take_retry_ms(), std::nullopt);  // once
}

TEST(SseFramerTest, LinesEndWithCrLfOrCrLf) {
  Outcome r =
      feed_every_way("data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\ndata: e\rdata: f\n\r");
  EXPECT_EQ(r.events, data_only({"a", "b", "c", "d\ne\nf"}));
  // A CR ending one piece and an LF beginning the next are one line end, not two.
  Framer f;
  Collect c;
  f.feed("data: a\r", c);
  f.feed("\ndata: b\r", c);
  f.feed("\n\r", c);
  f.feed("\n", c);
  EXPECT_EQ(c.got, data_only({"a\nb"}));
}

TEST(SseFramerTest, FieldWithoutColonHasAnEmptyValue) {
  Outcome r = feed_every_way("data\n\ndata\ndata\n\nevent\ndata: x\n\n");
  EXPECT_EQ(r.events, data_only({"", "\n", "x"}));
}

TEST(SseFramerTest, BlankLineWithoutDataDispatchesNothing) {
  Outcome r = feed_every_way("\n\n\nevent: x\n\n: only a comment\n\ndata: a\n\n");
  EXPECT_EQ(r.events, data_only({"a"}));  // the type of the empty event did not carry over
}

TEST(SseFramerTest, ByteOrderMarkIsSkippedAtTheStartOnly) {
  EXPECT_EQ(feed_every_way("\xEF\xBB\xBF"
                           "data: a\n\n")
                .events,
            data_only({"a"}));
  // A BOM after the start is data.
  EXPECT_EQ(feed_every_way("data: a\n\n\xEF\xBB\xBF"
                           "data: b\n\n")
                .events,
            data_only({"a"}));
  EXPECT_EQ(feed_every_way("\xEF\xBB\xBF\xEF\xBB\xBF"
                           "data: a\n\n")
                .events,
            data_only({}));
  // Bytes that begin like a BOM but are not one are kept.
  EXPECT_EQ(feed_every_way("\xEF\xBB"
                           "data: a\n\ndata: b\n\n")
                .events,
            data_only({"b"}));
  EXPECT_EQ(feed_every_way("data: \xEF\xBB\n\n").events, data_only({"\xEF\xBB"}));
  EXPECT_EQ(feed_every_way("\xEF"
                           "\n\ndata: b\n\n")
                .events,
            data_only({"b"}));
}

TEST(SseFramerTest, OversizedLineDropsTheEventUntilTheNextBlankLine) {
  const std::string big(40, 'x');
  Outcome r =
      feed_every_way("data: a\n\ndata: b\ndata: " + big + "\ndata: c\nid: 5\n\ndata: d\n\n", 32);
  EXPECT_EQ(r.events, (std::vector<Got>{{"a", "", ""}, {"d", "", "5"}}));
  EXPECT_EQ(r.dropped, 1u);
  // An oversized comment drops its event too; the framer resyncs at the blank line.
  r = feed_every_way(": " + big + "\ndata: e\n\ndata: f\n\n", 32);
  EXPECT_EQ(r.events, data_only({"f"}));
  EXPECT_EQ(r.dropped, 1u);
  // Oversized lines ending in CR, and several events in a row.
  r = feed_every_way("data: " + big + "\r\rdata: " + big + "\r\n\r\ndata: g\r\r", 32);
  EXPECT_EQ(r.events, data_only({"g"}));
  EXPECT_EQ(r.dropped, 2u);
}

TEST(SseFramerTest, DataGrowingPastTheLimitDropsTheEvent) {
  const std::string line = "data: 0123456789\n";  // 10 bytes of data each
  Outcome r = feed_every_way(line + line + line + "\n" + line + line + "\n", 25);
  EXPECT_EQ(r.events, data_only({"0123456789\n0123456789"}));
  EXPECT_EQ(r.dropped, 1u);
  // Exactly at the limit is kept.
  r = feed_every_way("data: 0123456789\ndata: 0123456789\n\n", 21);
  EXPECT_EQ(r.events, data_only({"0123456789\n0123456789"}));
  EXPECT_EQ(r.dropped, 0u);
}

TEST(SseFramerTest, EndOfStreamDiscardsThePendingEventAndKeepsTheId) {
  Framer f;
  Collect c;
  f.feed("\xEF\xBB\xBFid: 1\ndata: a\n\nid: 2\ndata: b", c);
  EXPECT_EQ(c.got, (std::vector<Got>{{"a", "", "1"}}));
  f.end_of_stream();
  EXPECT_EQ(f.last_event_id(), "1");  // the cut event's id was not committed
  // A new stream: the BOM is skipped again, the partial line and event are gone.
  f.feed("\xEF\xBB\xBF", c);
  f.feed("data: c\n\n", c);
  EXPECT_EQ(c.got, (std::vector<Got>{{"a", "", "1"}, {"c", "", "1"}}));
  f.feed("event: t\ndata: d\r", c);
  f.end_of_stream();
  f.feed("\ndata: e\n\n", c);  // the LF after the old stream's CR is a line of its own
  EXPECT_EQ(c.got.back(), (Got{"e", "", "1"}));
  EXPECT_EQ(f.events(), 3u);
}

TEST(SseFramerTest, ConfiguredLastEventIdIsKept) {
  Framer f;
  Collect c;
  f.set_last_event_id("41");
  f.feed("data: a\n\n", c);
  EXPECT_EQ(c.got, (std::vector<Got>{{"a", "", "41"}}));
}

TEST(SseFramerTest, EveryRuleAtOnceGivesTheSameEventsWhateverThePieces) {
  const std::string big(50, 'y');
  const std::string stream =
      "\xEF\xBB\xBF: stream\r\nretry: 250\nid: 1\r\nevent: play\rdata: {\"a\":1}\r\n\r\n"
      "data\ndata:  x\r\ndata:y\r\rid: 2\0z\nid: 3\nid\n\ndata: "s +
      big + "\nid: 4\n\nfoo\n:c\ndata: last\r\n\n";
  Outcome r = feed_every_way(stream, 40);
  EXPECT_EQ(r.events, (std::vector<Got>{
                          {"{\"a\":1}", "play", "1"}, {"\n x\ny", "", "1"}, {"last", "", "4"}}));
  EXPECT_EQ(r.dropped, 1u);
  EXPECT_EQ(r.retry, 250u);
  EXPECT_EQ(r.last_id, "4");
}

TEST(SseFramerTest, ManyEventsInOnePieceAreReadInPlace) {
  std::string stream;
  for (int i = 0; i < 10000; ++i) stream += "data: {\"n\":" + std::to_string(i) + "}\n\n";
  Outcome r = feed(stream, 4096);
  ASSERT_EQ(r.events.size(), 10000u);
  EXPECT_EQ(r.events[9999].data, "{\"n\":9999}");
  EXPECT_EQ(r.events[4000].data, "{\"n\":4000}");
}

}  // namespace
}  // namespace ingestd::plugins::sse

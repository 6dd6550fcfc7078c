#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "config/config.h"
#include "fake_context.h"
#include "ingestd/plugin.h"
#include "source/sse/sse_source.h"
#include "source/sse/sse_stream.h"
#include "tiny_server.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::FakeContext;
using ingestd::testing::stop_at_every_step;

constexpr ComponentDescriptor kDescriptor =
    describe<SseSource>(Kind::kSource, "sse", kSseSourceDoc, kSseSourceOptions);

std::unique_ptr<SseSource> make(const std::string& yaml, CollectingDiagnostics& diag) {
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(kDescriptor, yaml, errors);
  EXPECT_TRUE(options) << (errors.empty() ? "" : errors.front().to_string());
  if (!options) return nullptr;
  return std::make_unique<SseSource>(*options, diag);
}

std::vector<std::string> raws(const std::vector<BatchPtr>& batches) {
  std::vector<std::string> out;
  for (const auto& b : batches)
    for (const Event& e : b->events()) out.emplace_back(e.raw);
  return out;
}

TEST(SseSourceOptionsTest, RefusesBadUrlsHeadersAndBackoff) {
  CollectingDiagnostics diag;
  make(
      "url: https://h/events\nheaders: {Last-Event-ID: '5', 'a b': x, X-Token: \"a\\nb\"}\n"
      "reconnect: {initial: 2s, max: 1s}\nlast_event_id: \"x\\ny\"",
      diag);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"url", "https is not supported: use an http:// URL (TLS is for a proxy in front of it)"},
      {"headers.Last-Event-ID", "'Last-Event-ID' is set by the source for each connection"},
      {"headers.a b", "'a b' is not a valid header name"},
      {"headers.X-Token", "must not contain a line break or NUL"},
      {"reconnect.max", "must be at least reconnect.initial"},
      {"last_event_id", "must not contain a line break or NUL"},
  };
  EXPECT_EQ(diag.errors, expected);
}

TEST(SseSourceOptionsTest, SchemaRejectsBadOptionsAndDocumentsEveryOne) {
  std::vector<config::Error> errors;
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "read_timeout: 1s", errors));  // no url
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "url: http://h/\nmax_event_size: 8", errors));
  EXPECT_FALSE(
      config::options_from_yaml(kDescriptor, "url: http://h/\nreconnect: {jitter: 2}", errors));
  EXPECT_EQ(errors.size(), 3u);
  for (const OptionSpec& spec : kSseSourceOptions)
    EXPECT_GT(std::strlen(spec.doc), 20u) << spec.name;
  for (const OptionSpec& spec : kSseReconnectOptions)
    EXPECT_GT(std::strlen(spec.doc), 20u) << spec.name;
}

TEST(SseSourceTest, BatchesFillWhileMoreIsReceivedAndGoWhenNothingIs) {
  CollectingDiagnostics diag;
  auto source = make("url: http://127.0.0.1:9000/sps\nmax_event_size: 64", diag);
  ASSERT_TRUE(diag.errors.empty());
  FakeContext ctx("plays");
  ctx.limits.max_events = 2;
  ASSERT_TRUE(source->start(ctx));
  std::vector<BatchPtr> ready;
  source->on_attempt(0);
  source->on_connected();
  // More is waiting: only the full batch goes; the third event waits for the next read.
  source->on_bytes("data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: {\"a\":3}\n\ndata: {\"a", true,
                   ready);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0]->size(), 2u);
  EXPECT_EQ(ready[0]->origin.component, "plays");
  EXPECT_EQ(ready[0]->ingest_time_ns, ctx.clock().now_ns());
  EXPECT_EQ(ready[0]->events()[0].time_ns, ctx.clock().now_ns());
  EXPECT_TRUE(ready[0]->acks.empty());
  // The events of a read lie one after another, each followed by a newline, in one buffer of
  // the batch: a JSON parser reads them as one document stream.
  const Event& d = ready[0]->events()[0];
  const Event& e = ready[0]->events()[1];
  EXPECT_EQ(d.raw.data()[d.raw.size()], '\n');
  EXPECT_EQ(e.raw.data(), d.raw.data() + d.raw.size() + 1);
  EXPECT_EQ(e.raw.data()[e.raw.size()], '\n');
  EXPECT_EQ(ctx.count("events"), 2u);
  // Nothing more is waiting: every event read so far goes.
  std::string big(100, 'x');
  source->on_bytes("\":4}\n\ndata: " + big + "\n\ndata: {\"a\":5}\n\n", false, ready);
  ASSERT_EQ(ready.size(), 3u);
  EXPECT_EQ(ready[2]->size(), 1u);
  EXPECT_EQ(raws(ready), (std::vector<std::string>{"{\"a\":1}", "{\"a\":2}", "{\"a\":3}",
                                                   "{\"a\":4}", "{\"a\":5}"}));
  // An empty read without more (the stream ends) sends a batch still open.
  source->on_bytes("data: 6\n\n", true, ready);
  source->on_bytes("", false, ready);
  EXPECT_EQ(ready.size(), 4u);
  EXPECT_EQ(ctx.count("events"), 6u);
  EXPECT_EQ(ctx.count("dropped"), 1u);
  EXPECT_EQ(ctx.count("connections"), 1u);
  EXPECT_EQ(ctx.count("reconnects"), 0u);
}

TEST(SseSourceTest, EventsFilterKeepsTheNamedTypes) {
  CollectingDiagnostics diag;
  auto source = make("url: http://h/\nevents: [play, message]", diag);
  FakeContext ctx;
  ASSERT_TRUE(source->start(ctx));
  std::vector<BatchPtr> ready;
  source->on_bytes("data: a\n\nevent: stop\ndata: b\n\nevent: play\ndata: c\n\n", false, ready);
  EXPECT_EQ(raws(ready), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(ctx.count("filtered"), 1u);
  EXPECT_EQ(ctx.count("events"), 2u);
}

TEST(SseSourceTest, AnEndIsCountedByKindAndReconnectsAfterTheLastCompleteEvent) {
  CollectingDiagnostics diag;
  auto source = make("url: http://h/\nlast_event_id: '7'", diag);
  FakeContext ctx;
  ASSERT_TRUE(source->start(ctx));
  EXPECT_EQ(source->last_event_id(), "7");
  std::vector<BatchPtr> ready;
  source->on_attempt(0);
  source->on_connected();
  source->on_bytes("retry: 250\nid: 8\ndata: a\n\nid: 9\ndata: b", false, ready);
  EXPECT_EQ(source->on_end(sse::End::kRead, 0, "the stream broke"), 250'000'000);
  EXPECT_EQ(source->last_event_id(), "8");  // event 9 was cut: it comes again
  source->on_attempt(100);
  EXPECT_EQ(source->on_end(sse::End::kStatus, 500, "HTTP 500"), std::nullopt);
  source->on_attempt(100);
  EXPECT_EQ(source->on_end(sse::End::kStatus, 500, "HTTP 500"), std::nullopt);
  source->on_attempt(100);
  source->on_connected();
  source->on_bytes("data: c\n\n", false, ready);  // a new stream: the old partial line is gone
  EXPECT_EQ(raws(ready), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(ctx.count("errors_read"), 1u);
  EXPECT_EQ(ctx.count("errors_status"), 2u);
  EXPECT_EQ(ctx.count("reconnects"), 3u);
  EXPECT_EQ(ctx.count("connections"), 2u);
  // Logged once per kind or status change, and once when connected again.
  size_t warnings = 0, infos = 0;
  for (const auto& [level, text] : ctx.logs) {
    warnings += level == LogLevel::kWarn;
    infos += level == LogLevel::kInfo && text.find("again after 2 failed") != std::string::npos;
  }
  EXPECT_EQ(warnings, 2u);
  EXPECT_EQ(infos, 1u);
}

// SSE loops for stop_at_every_step(): 5 s to connect and to read, 10 s before a reconnection.
struct SseLoops : sse::Listener {
  std::unique_ptr<sse::Loop> operator()(boost::asio::io_context& io, const std::string& url) {
    std::string error;
    sse::Target target;
    target.url = *http::parse_url(url, error);
    target.connect_timeout_ns = 5'000'000'000;
    target.read_timeout_ns = 5'000'000'000;
    target.backoff.initial_ns = 10'000'000'000;
    return std::make_unique<sse::Loop>(
        io, target, [] { return 0.5; }, out, *this);
  }
  std::string last_event_id() override { return ""; }
  void on_attempt(int64_t) override {}
  void on_connected() override {}
  void on_bytes(std::string_view, bool, std::vector<BatchPtr>&) override {}
  std::optional<int64_t> on_end(sse::End, int, const std::string&) override { return {}; }
  ingestd::testing::CollectingOutput out;
};

TEST(SseLoopTest, AStopBetweenAnyTwoStepsOfAConnectionEndsTheLoopAtOnce) {
  // The server takes the request and never answers: the loop ends up waiting for the answer.
  EXPECT_GE(stop_at_every_step("", SseLoops()), 4u);
}

TEST(SseLoopTest, AStopBetweenAnyTwoStepsOfAStreamAndItsEndEndsTheLoopAtOnce) {
  // The server sends an event and ends the stream: the loop ends up waiting to reconnect.
  EXPECT_GE(stop_at_every_step("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                               "data: a\n\n",
                               SseLoops()),
            4u);
}

}  // namespace
}  // namespace ingestd::plugins

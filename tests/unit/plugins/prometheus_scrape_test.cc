#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "config/config.h"
#include "fake_context.h"
#include "ingestd/plugin.h"
#include "source/prometheus_scrape/scrape_source.h"
#include "tiny_server.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::CollectingOutput;
using ingestd::testing::FakeContext;
using ingestd::testing::stop_at_every_step;
using ingestd::testing::TinyServer;

constexpr ComponentDescriptor kDescriptor = describe<PrometheusScrapeSource>(
    Kind::kSource, "prometheus_scrape", kPrometheusScrapeSourceDoc, kPrometheusScrapeSourceOptions);

std::unique_ptr<PrometheusScrapeSource> make(const std::string& yaml, CollectingDiagnostics& diag) {
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(kDescriptor, yaml, errors);
  EXPECT_TRUE(options) << (errors.empty() ? "" : errors.front().to_string());
  if (!options) return nullptr;
  return std::make_unique<PrometheusScrapeSource>(*options, diag);
}

scrape::Outcome failed(scrape::Failure failure, int status = 0) {
  scrape::Outcome o;
  o.failure = failure;
  o.status = status;
  o.error = fmt::format("{} went wrong", scrape::failure_name(failure));
  return o;
}

TEST(PrometheusScrapeOptionsTest, RefusesBadUrlsAndHeaders) {
  CollectingDiagnostics diag;
  make(
      "url: https://h/metrics\nheaders: {Connection: keep-alive, 'a b': x, X-Token: \"a\\nb\", "
      "Accept-Encoding: br}",
      diag);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"url", "https is not supported: use an http:// URL (TLS is for a proxy in front of it)"},
      {"headers.Connection", "'Connection' is set by the source for each request"},
      {"headers.a b", "'a b' is not a valid header name"},
      {"headers.X-Token", "must not contain a line break or NUL"},
      {"headers.Accept-Encoding", "'Accept-Encoding' is set by the source for each request"},
  };
  EXPECT_EQ(diag.errors, expected);
}

TEST(PrometheusScrapeOptionsTest, SchemaRejectsBadOptions) {
  std::vector<config::Error> errors;
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "interval: 1s", errors));  // no url
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "url: http://h/\ninterval: 1ms", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "url: http://h/\nmax_body_size: 10", errors));
  EXPECT_EQ(errors.size(), 3u);
}

TEST(PrometheusScrapeOptionsTest, EveryOptionHasADoc) {
  for (const OptionSpec& spec : kPrometheusScrapeSourceOptions)
    EXPECT_GT(std::strlen(spec.doc), 20u) << spec.name;
}

TEST(PrometheusScrapeSourceTest, ASuccessfulScrapeIsOneRecordWithTheBody) {
  CollectingDiagnostics diag;
  auto source = make("url: http://127.0.0.1:9100/metrics", diag);
  FakeContext ctx("node");
  ASSERT_TRUE(source->start(ctx));
  scrape::Outcome o;
  o.body = "# TYPE up gauge\nup 1\n";
  o.start_ns = 1'700'000'000'123'456'789;
  o.duration_ns = 2'500'000;
  BatchPtr b = source->handle(ctx, o);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->size(), 1u);
  const Event& e = b->events()[0];
  EXPECT_EQ(e.raw, "# TYPE up gauge\nup 1\n");
  EXPECT_EQ(e.raw.data()[e.raw.size()], '\0');  // padded, as batch buffers are
  EXPECT_EQ(e.time_ns, o.start_ns);
  EXPECT_EQ(b->ingest_time_ns, o.start_ns);
  EXPECT_EQ(b->origin.component, "node");
  EXPECT_TRUE(b->acks.empty());
  auto fields = b->fields(e);
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_EQ(fields[0].key, "url");
  EXPECT_EQ(fields[0].value.s, "http://127.0.0.1:9100/metrics");
  EXPECT_EQ(fields[1].key, "scrape_time");
  EXPECT_EQ(fields[1].value.i, 1'700'000'000'123);
  EXPECT_EQ(fields[2].key, "scrape_duration");
  EXPECT_EQ(fields[2].value.d, 0.0025);
  EXPECT_EQ(ctx.count("scrapes"), 1u);
  EXPECT_EQ(ctx.count("bytes"), 21u);
}

TEST(PrometheusScrapeSourceTest, FailuresAreCountedByReasonAndLoggedOncePerChange) {
  CollectingDiagnostics diag;
  auto source = make("url: http://127.0.0.1:9100/metrics", diag);
  FakeContext ctx;
  ASSERT_TRUE(source->start(ctx));
  const std::vector<scrape::Outcome> outcomes = {
      failed(scrape::Failure::kConnect),
      failed(scrape::Failure::kConnect),
      failed(scrape::Failure::kStatus, 401),
      failed(scrape::Failure::kStatus, 401),
      failed(scrape::Failure::kStatus, 500),
      scrape::Outcome{},
      scrape::Outcome{},
      failed(scrape::Failure::kTimeout),
      failed(scrape::Failure::kBodyTooLarge),
      failed(scrape::Failure::kRead),
  };
  size_t records = 0;
  for (scrape::Outcome o : outcomes)
    if (source->handle(ctx, o)) ++records;
  EXPECT_EQ(records, 2u);
  EXPECT_EQ(ctx.count("scrapes"), outcomes.size());
  EXPECT_EQ(ctx.count("failures_connect"), 2u);
  EXPECT_EQ(ctx.count("failures_status"), 3u);
  EXPECT_EQ(ctx.count("failures_timeout"), 1u);
  EXPECT_EQ(ctx.count("failures_body_too_large"), 1u);
  EXPECT_EQ(ctx.count("failures_read"), 1u);
  std::vector<std::string> logs;
  for (const auto& [level, text] : ctx.logs) logs.push_back(text);
  const std::string tail = "; logged again when the failure changes or a scrape succeeds)";
  const std::string url = "http://127.0.0.1:9100/metrics";
  EXPECT_EQ(
      logs,
      (std::vector<std::string>{
          "scraping " + url + " fails: connect went wrong (counted in failures_connect" + tail,
          "scraping " + url + " fails: status went wrong (counted in failures_status" + tail,
          "scraping " + url + " fails: status went wrong (counted in failures_status" + tail,
          "scraping " + url + " succeeds again after 5 failed scrape(s)",
          "scraping " + url + " fails: timeout went wrong (counted in failures_timeout" + tail,
          "scraping " + url +
              " fails: body_too_large went wrong (counted in "
              "failures_body_too_large" +
              tail,
          "scraping " + url + " fails: read went wrong (counted in failures_read" + tail,
      }));
}

// A context whose stop wakes wait_for_stop(), as the core's does.
// Stops on request, and runs an io_context on a thread of its own as the daemon's pool would.
class StoppableContext : public FakeContext {
 public:
  StoppableContext() : io_thread_([this] { io_.run(); }) {}
  ~StoppableContext() override {
    guard_.reset();
    io_thread_.join();
  }
  boost::asio::io_context& io() override { return io_; }
  bool stopping() const override { return stop_.load(); }
  bool wait_for_stop(int64_t timeout_ns) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return stop_.load(); });
    return stop_.load();
  }
  void stop() {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      io_.get_executor()};
  std::thread io_thread_;
};

std::string http_answer(int status, const std::string& body) {
  return fmt::format("HTTP/1.1 {} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
                     status, body.size(), body);
}

// Runs the source until `until` holds (or 10 s pass), then stops it; returns how long the stop
// took.
template <class Until>
std::chrono::milliseconds run_until(PrometheusScrapeSource& source, StoppableContext& ctx,
                                    CollectingOutput& out, Until until) {
  std::thread runner([&] { source.run(ctx, out); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!until() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto stop_at = std::chrono::steady_clock::now();
  ctx.stop();
  runner.join();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               stop_at);
}

TEST(PrometheusScrapeLoopTest, ScrapesEveryIntervalWithTheHeaders) {
  TinyServer server(http_answer(200, "up 1\n"));
  CollectingDiagnostics diag;
  auto source = make(
      fmt::format("url: {}\ninterval: 20ms\nheaders: {{X-Algo-API-Token: s3cret}}", server.url()),
      diag);
  StoppableContext ctx;
  CollectingOutput out;
  ASSERT_TRUE(source->start(ctx));
  run_until(*source, ctx, out, [&] { return out.event_count() >= 3; });
  ASSERT_GE(out.event_count(), 3u);
  EXPECT_EQ(out.batches[0]->events()[0].raw, "up 1\n");
  std::string request = server.requests().at(0);
  EXPECT_TRUE(request.starts_with("GET /metrics HTTP/1.1\r\n")) << request;
  EXPECT_NE(request.find("X-Algo-API-Token: s3cret\r\n"), std::string::npos) << request;
  EXPECT_NE(request.find("Accept: text/plain;version=0.0.4"), std::string::npos) << request;
  EXPECT_EQ(ctx.count("failures_status") + ctx.count("failures_connect"), 0u);
}

std::string gzip_answer(const std::string& body) {
  std::string compressed, error;
  EXPECT_TRUE(http::gzip(body, compressed, error)) << error;
  return fmt::format("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n{}",
                     compressed.size(), compressed);
}

TEST(PrometheusScrapeLoopTest, GzipAnswersAreDecompressed) {
  TinyServer server(gzip_answer("# TYPE up gauge\nup 1\n"));
  CollectingDiagnostics diag;
  auto source = make(fmt::format("url: {}\ninterval: 20ms", server.url()), diag);
  StoppableContext ctx;
  CollectingOutput out;
  ASSERT_TRUE(source->start(ctx));
  run_until(*source, ctx, out, [&] { return out.event_count() >= 1; });
  ASSERT_GE(out.event_count(), 1u);
  EXPECT_EQ(out.batches[0]->events()[0].raw, "# TYPE up gauge\nup 1\n");
  EXPECT_NE(server.requests().at(0).find("Accept-Encoding: gzip\r\n"), std::string::npos);
}

TEST(PrometheusScrapeLoopTest, GzipThatDecompressesTooLargeOrIsCorruptFails) {
  TinyServer big(gzip_answer(std::string(4096, 'x')));
  std::string corrupt = gzip_answer("up 1\n");
  corrupt[corrupt.size() - 12] ^= 0x55;  // in the deflate data or its checksum
  TinyServer broken(corrupt);
  for (auto* server : {&big, &broken}) {
    CollectingDiagnostics diag;
    auto source =
        make(fmt::format("url: {}\ninterval: 20ms\nmax_body_size: 1KiB", server->url()), diag);
    StoppableContext ctx;
    CollectingOutput out;
    ASSERT_TRUE(source->start(ctx));
    const char* counter = server == &big ? "failures_body_too_large" : "failures_read";
    run_until(*source, ctx, out, [&] { return ctx.count(counter) >= 1; });
    EXPECT_GE(ctx.count(counter), 1u) << counter;
    EXPECT_EQ(out.event_count(), 0u);
  }
}

TEST(PrometheusScrapeLoopTest, AnswersOtherThan200AreFailures) {
  TinyServer server(http_answer(401, "no token"));
  CollectingDiagnostics diag;
  auto source = make(fmt::format("url: {}\ninterval: 20ms", server.url()), diag);
  StoppableContext ctx;
  CollectingOutput out;
  ASSERT_TRUE(source->start(ctx));
  run_until(*source, ctx, out, [&] { return ctx.count("failures_status") >= 2; });
  EXPECT_GE(ctx.count("failures_status"), 2u);
  EXPECT_EQ(out.event_count(), 0u);
}

TEST(PrometheusScrapeLoopTest, ABodyOverTheLimitIsAFailure) {
  TinyServer server(http_answer(200, std::string(2048, 'x')));
  CollectingDiagnostics diag;
  auto source =
      make(fmt::format("url: {}\ninterval: 20ms\nmax_body_size: 1KiB", server.url()), diag);
  StoppableContext ctx;
  CollectingOutput out;
  ASSERT_TRUE(source->start(ctx));
  run_until(*source, ctx, out, [&] { return ctx.count("failures_body_too_large") >= 1; });
  EXPECT_GE(ctx.count("failures_body_too_large"), 1u);
  EXPECT_EQ(out.event_count(), 0u);
}

TEST(PrometheusScrapeLoopTest, RefusedConnectionsAreConnectFailures) {
  uint16_t port;
  {
    TinyServer closed("x");
    port = static_cast<uint16_t>(std::stoi(closed.url().substr(17)));
  }
  CollectingDiagnostics diag;
  auto source = make(fmt::format("url: http://127.0.0.1:{}/metrics\ninterval: 20ms", port), diag);
  StoppableContext ctx;
  CollectingOutput out;
  ASSERT_TRUE(source->start(ctx));
  run_until(*source, ctx, out, [&] { return ctx.count("failures_connect") >= 2; });
  EXPECT_GE(ctx.count("failures_connect"), 2u);
}

TEST(PrometheusScrapeLoopTest, ASilentServerTimesOutAndAStopDuringTheIntervalIsPrompt) {
  TinyServer server("");  // accepts, never answers
  CollectingDiagnostics diag;
  auto source = make(fmt::format("url: {}\ninterval: 10s\ntimeout: 100ms", server.url()), diag);
  StoppableContext ctx;
  CollectingOutput out;
  ASSERT_TRUE(source->start(ctx));
  auto stop_took = run_until(*source, ctx, out, [&] { return ctx.count("failures_timeout") >= 1; });
  EXPECT_EQ(ctx.count("failures_timeout"), 1u);
  EXPECT_LT(stop_took.count(), 1000);
}

TEST(PrometheusScrapeLoopTest, AStopCancelsTheScrapeInProgress) {
  TinyServer server("");
  CollectingDiagnostics diag;
  auto source = make(fmt::format("url: {}\ninterval: 10s\ntimeout: 5s", server.url()), diag);
  StoppableContext ctx;
  CollectingOutput out;
  ASSERT_TRUE(source->start(ctx));
  auto stop_took = run_until(*source, ctx, out, [&] { return !server.requests().empty(); });
  EXPECT_LT(stop_took.count(), 1000);
  EXPECT_EQ(ctx.count("scrapes"), 0u);  // cancelled, not counted as a failure
}

// Scrape loops for stop_at_every_step(): every 10 s, with a timeout of 5 s.
struct ScrapeLoops {
  std::unique_ptr<scrape::Loop> operator()(boost::asio::io_context& io, const std::string& url) {
    std::string error;
    scrape::Target target;
    target.url = *http::parse_url(url, error);
    target.timeout_ns = 5'000'000'000;
    return std::make_unique<scrape::Loop>(io, target, 10'000'000'000, clock, out,
                                          [](scrape::Outcome&) { return BatchPtr(); });
  }
  ingestd::testing::FakeClock clock;
  CollectingOutput out;
};

TEST(PrometheusScrapeLoopTest, AStopBetweenAnyTwoStepsOfAScrapeEndsTheLoopAtOnce) {
  // The server takes the request and never answers: the loop ends up waiting for the answer.
  EXPECT_GE(stop_at_every_step("", ScrapeLoops()), 4u);
}

TEST(PrometheusScrapeLoopTest, AStopBetweenAnyTwoStepsOfAnAnsweredScrapeEndsTheLoopAtOnce) {
  // The server answers: the loop ends up waiting for the next interval.
  EXPECT_GE(stop_at_every_step(http_answer(200, "up 1\n"), ScrapeLoops()), 4u);
}

}  // namespace
}  // namespace ingestd::plugins

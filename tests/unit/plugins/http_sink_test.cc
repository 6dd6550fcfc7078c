#include "sink/http/http_sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fake_context.h"
#include "ingestd/plugin.h"
#include "plugin_test_support.h"
#include "sink/http/http_request.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::FakeContext;

constexpr ComponentDescriptor kDescriptor =
    describe<HttpSink>(Kind::kSink, "http", kHttpSinkDoc, kHttpSinkOptions);

// The factory's errors for the given options, as "option: message".
std::vector<std::string> factory_errors(const std::string& yaml) {
  CollectingDiagnostics diag;
  HttpSink sink(ingestd::testing::options_or_fail(kDescriptor, yaml), diag);
  std::vector<std::string> out;
  for (const auto& [option, message] : diag.errors) out.push_back(option + ": " + message);
  return out;
}

BatchPtr raw_batch(const std::vector<std::string>& lines) {
  auto batch = std::make_unique<Batch>();
  for (const auto& line : lines) batch->add(batch->copy(line), 0);
  return batch;
}

std::string gunzip(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  std::string out(in.size() * 20 + 1024, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

// --- options ------------------------------------------------------------------------------------

TEST(HttpSinkOptions, AcceptsAPlainUrlAndHeaders) {
  EXPECT_TRUE(factory_errors(R"(
url: http://127.0.0.1:8080/ingest
headers: {Authorization: "Bearer abc", X-Tag: [a, b]}
)")
                  .empty());
}

TEST(HttpSinkOptions, RefusesHttpsAndBadUrlsAtTheUrlOption) {
  auto errors = factory_errors("url: https://example.com/x\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            "url: https is not supported: use an http:// URL (TLS is for a proxy in front of it)");
  EXPECT_EQ(factory_errors("url: example.com/x\n"),
            (std::vector<std::string>{"url: 'example.com/x' is not an http:// URL"}));
  EXPECT_EQ(factory_errors("url: http://h:99999/\n"),
            (std::vector<std::string>{"url: port '99999' is not a number from 1 to 65535"}));
  EXPECT_EQ(factory_errors("url: http://:80/\n"),
            (std::vector<std::string>{"url: 'http://:80/' names no host"}));
  EXPECT_EQ(factory_errors("url: http://u:p@h/\n").size(), 1u);
}

TEST(HttpSinkOptions, RefusesHeadersTheSinkOwnsAndBadNamesOrValues) {
  EXPECT_EQ(factory_errors("url: http://h/\nheaders: {Content-Length: '5'}\n"),
            (std::vector<std::string>{
                "headers.Content-Length: 'Content-Length' is set by the sink for each request"}));
  EXPECT_EQ(factory_errors("url: http://h/\nheaders: {content-encoding: br}\n"),
            (std::vector<std::string>{"headers.content-encoding: 'content-encoding' is set by "
                                      "the sink: use `gzip: true`"}));
  EXPECT_EQ(factory_errors("url: http://h/\nheaders: {'Bad Name': x}\n"),
            (std::vector<std::string>{"headers.Bad Name: 'Bad Name' is not a valid header name"}));
  EXPECT_EQ(factory_errors("url: http://h/\nheaders: {X-A: \"a\\r\\nX-B: b\"}\n"),
            (std::vector<std::string>{"headers.X-A: must not contain a line break or NUL"}));
}

TEST(HttpUrl, TakesHostPortTargetAndHostHeader) {
  std::string error;
  auto u = http::parse_url("http://Example.com", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->host, "Example.com");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->host_header, "Example.com");

  u = http::parse_url("HTTP://10.0.0.1:8080?a=1", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->target, "/?a=1");
  EXPECT_EQ(u->host_header, "10.0.0.1:8080");

  u = http::parse_url("http://[::1]:9000/v1/logs?x=y", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->target, "/v1/logs?x=y");
  EXPECT_EQ(u->host_header, "[::1]:9000");

  EXPECT_FALSE(http::parse_url("http://h/a#frag", error));
  EXPECT_FALSE(http::parse_url("http://h/a b", error));
  EXPECT_FALSE(http::parse_url("http://[::1/", error));
}

// --- status mapping -----------------------------------------------------------------------------

constexpr int64_t kNow = 1'700'000'000'000'000'000;  // 2023-11-14T22:13:20Z

// An answer with the standard reason phrase of the statuses these tests use.
SinkResult answer(int status, std::string body = {}, std::string retry_after = {}) {
  static const std::map<int, std::string> kReasons = {{400, "Bad Request"},
                                                      {413, "Content Too Large"},
                                                      {429, "Too Many Requests"},
                                                      {503, "Service Unavailable"}};
  auto it = kReasons.find(status);
  return http::classify(
      {status, it == kReasons.end() ? "" : it->second, std::move(body), std::move(retry_after)},
      kNow);
}

TEST(HttpStatus, TwoHundredsDeliverServerErrorsAndThrottlingRetryTheRestIsPermanent) {
  for (int s : {200, 201, 202, 204, 299}) EXPECT_EQ(answer(s).status, SinkStatus::kOk) << s;
  for (int s : {408, 429, 500, 502, 503, 504, 599})
    EXPECT_EQ(answer(s).status, SinkStatus::kRetryable) << s;
  for (int s : {100, 301, 304, 400, 401, 403, 404, 409, 413, 415, 422, 499, 600})
    EXPECT_EQ(answer(s).status, SinkStatus::kPermanent) << s;
}

TEST(HttpStatus, ErrorsNameTheStatusAndTheStartOfTheBody) {
  EXPECT_EQ(answer(400, "field 'x' missing\n").error, "HTTP 400 Bad Request: field 'x' missing ");
  EXPECT_EQ(answer(418).error, "HTTP 418");
  EXPECT_EQ(answer(301).error, "HTTP 301 (redirects are not followed: fix the url)");
  SinkResult big = answer(413, std::string(1000, 'x'));
  EXPECT_EQ(big.error, "HTTP 413 Content Too Large: " + std::string(200, 'x') + "...");
}

TEST(HttpStatus, RetryAfterOf429And503BecomesTheWait) {
  SinkResult r = answer(429, "", "3");
  EXPECT_EQ(r.status, SinkStatus::kRetryable);
  EXPECT_EQ(r.retry_after_ns, 3'000'000'000);
  EXPECT_EQ(r.error, "HTTP 429 Too Many Requests (Retry-After: 3)");
  // kNow + 90 s as an HTTP date.
  r = answer(503, "busy", "Tue, 14 Nov 2023 22:14:50 GMT");
  EXPECT_EQ(r.retry_after_ns, 90'000'000'000);
  EXPECT_EQ(answer(500, "", "3").retry_after_ns, 0);  // only 429 and 503 carry it
  EXPECT_EQ(answer(503, "", "soon").retry_after_ns, 0);
  EXPECT_EQ(answer(503).retry_after_ns, 0);
}

TEST(HttpStatus, ParsesRetryAfterSecondsAndDates) {
  EXPECT_EQ(http::parse_retry_after("0", kNow), 0);
  EXPECT_EQ(http::parse_retry_after(" 120 ", kNow), 120'000'000'000);
  EXPECT_EQ(http::parse_retry_after("Tue, 14 Nov 2023 22:13:19 GMT", kNow), 0);  // past
  EXPECT_EQ(http::parse_retry_after("Tue, 14 Nov 2023 22:13:21 GMT", kNow), 1'000'000'000);
  EXPECT_FALSE(http::parse_retry_after("", kNow));
  EXPECT_FALSE(http::parse_retry_after("-1", kNow));
  EXPECT_FALSE(http::parse_retry_after("1.5", kNow));
  EXPECT_FALSE(http::parse_retry_after("Tue, 14 Nov 2023 22:13:21", kNow));
}

// --- bodies -------------------------------------------------------------------------------------

TEST(HttpBody, NdjsonIsOneLinePerEventAndJsonArrayOneArray) {
  auto batch = raw_batch({R"({"a":1})", R"({"b":"x"})"});
  std::string body;
  EXPECT_EQ(http::build_body(body, *batch, 0, http::Format::kNdjson, json::Encoding::kAuto, 0), 2u);
  EXPECT_EQ(body, "{\"a\":1}\n{\"b\":\"x\"}\n");
  EXPECT_EQ(http::build_body(body, *batch, 0, http::Format::kJsonArray, json::Encoding::kAuto, 0),
            2u);
  EXPECT_EQ(body, R"([{"a":1},{"b":"x"}])");
  EXPECT_EQ(http::build_body(body, *batch, 1, http::Format::kJsonArray, json::Encoding::kAuto, 0),
            2u);
  EXPECT_EQ(body, R"([{"b":"x"}])");
}

TEST(HttpBody, EncodingJsonWritesTheFields) {
  auto batch = std::make_unique<Batch>();
  Event& e = batch->add(batch->copy("original"), 0);
  batch->append_field(e, "n", Value::integer(7));
  std::string body;
  http::build_body(body, *batch, 0, http::Format::kJsonArray, json::Encoding::kJson, 0);
  EXPECT_EQ(body, R"([{"n":7}])");
  http::build_body(body, *batch, 0, http::Format::kNdjson, json::Encoding::kRaw, 0);
  EXPECT_EQ(body, "original\n");
}

TEST(HttpBody, MaxBodySizeSplitsBetweenEventsAndLetsALargeEventGoAlone) {
  auto batch = raw_batch({"aaaa", "bbbb", "cccccccccccc", "dd"});
  std::string body;
  // "aaaa\nbbbb\n" is 10 bytes: it fits in 10, the third event does not.
  EXPECT_EQ(http::build_body(body, *batch, 0, http::Format::kNdjson, json::Encoding::kRaw, 10), 2u);
  EXPECT_EQ(body, "aaaa\nbbbb\n");
  EXPECT_EQ(http::build_body(body, *batch, 2, http::Format::kNdjson, json::Encoding::kRaw, 10), 3u);
  EXPECT_EQ(body, "cccccccccccc\n");
  EXPECT_EQ(http::build_body(body, *batch, 3, http::Format::kNdjson, json::Encoding::kRaw, 10), 4u);
  EXPECT_EQ(body, "dd\n");
  // The array's brackets and commas count: "[aaaa,bbbb]" is 11 bytes.
  EXPECT_EQ(http::build_body(body, *batch, 0, http::Format::kJsonArray, json::Encoding::kRaw, 10),
            1u);
  EXPECT_EQ(body, "[aaaa]");
}

TEST(HttpBody, GzipRoundTrips) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += R"({"seq":)" + std::to_string(i) + "}\n";
  std::string packed, error;
  ASSERT_TRUE(http::gzip(text, packed, error)) << error;
  EXPECT_LT(packed.size(), text.size() / 4);
  EXPECT_EQ(static_cast<unsigned char>(packed[0]), 0x1f);  // the gzip magic
  EXPECT_EQ(static_cast<unsigned char>(packed[1]), 0x8b);
  EXPECT_EQ(gunzip(packed), text);
  ASSERT_TRUE(http::gzip("", packed, error)) << error;
  EXPECT_EQ(gunzip(packed), "");
}

// --- the sink against a scripted server ---------------------------------------------------------

// A one-thread HTTP/1.1 server on 127.0.0.1 that answers each request with the next scripted
// answer; "hang" reads the request and never answers, waiting for the client to close. Requests
// (head and body as received) are kept; connections are counted.
class ScriptedServer {
 public:
  static constexpr std::string_view kQuietClose = "quiet-close:";

  explicit ScriptedServer(std::vector<std::string> answers)
      : answers_(answers.begin(), answers.end()) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("cannot listen");
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/in"; }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  int connections() {
    std::lock_guard lock(mu_);
    return connections_;
  }
  int closed() {
    std::lock_guard lock(mu_);
    return closed_;
  }

 private:
  void serve() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      {
        std::lock_guard lock(mu_);
        ++connections_;
      }
      serve_connection(c);
      ::close(c);
      {
        std::lock_guard lock(mu_);
        ++closed_;
      }
    }
  }

  void serve_connection(int c) {
    std::string in;
    char buf[65536];
    for (;;) {
      size_t head_end;
      while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, static_cast<size_t>(n));
      }
      size_t length = 0;
      if (size_t at = in.find("Content-Length: "); at != std::string::npos && at < head_end)
        length = std::stoul(in.substr(at + 16));
      while (in.size() < head_end + 4 + length) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, static_cast<size_t>(n));
      }
      std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
      {
        std::lock_guard lock(mu_);
        requests_.push_back(in.substr(0, head_end + 4 + length));
        if (!answers_.empty()) {
          answer = answers_.front();
          answers_.pop_front();
        }
      }
      in.erase(0, head_end + 4 + length);
      if (answer == "hang") {
        while (::read(c, buf, sizeof buf) > 0) {
        }
        return;
      }
      // "quiet-close:ANSWER" sends ANSWER and then closes the connection without saying so.
      const bool quiet_close = answer.rfind(kQuietClose, 0) == 0;
      if (quiet_close) answer.erase(0, kQuietClose.size());
      if (::write(c, answer.data(), answer.size()) != static_cast<ssize_t>(answer.size())) return;
      if (quiet_close || answer.find("Connection: close") != std::string::npos) return;
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::deque<std::string> answers_;
  std::vector<std::string> requests_;
  int connections_ = 0;
  int closed_ = 0;
};

struct Posting {
  FakeContext ctx{"out"};
  std::unique_ptr<HttpSink> sink;

  explicit Posting(const std::string& yaml) {
    CollectingDiagnostics diag;
    sink = std::make_unique<HttpSink>(ingestd::testing::options_or_fail(kDescriptor, yaml), diag);
    EXPECT_TRUE(diag.errors.empty()) << diag.errors[0].second;
    EXPECT_TRUE(sink->start(ctx));
  }
  SinkResult write(const std::vector<std::string>& lines) {
    return sink->write(ctx, *raw_batch(lines));
  }
};

std::string body_of(const std::string& request) {
  return request.substr(request.find("\r\n\r\n") + 4);
}

TEST(HttpSink, PostsEachBatchOverOneKeptAliveConnection) {
  ScriptedServer server({});
  Posting p("url: " + server.url() + "\nheaders: {Authorization: Bearer t0k, User-Agent: me}\n");
  ASSERT_EQ(p.write({R"({"seq":1})", R"({"seq":2})"}).status, SinkStatus::kOk);
  ASSERT_EQ(p.write({R"({"seq":3})"}).status, SinkStatus::kOk);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(p.ctx.count("connections"), 1u);
  EXPECT_EQ(p.ctx.count("requests"), 2u);
  EXPECT_EQ(p.ctx.count("responses_2xx"), 2u);
  EXPECT_EQ(requests[0].rfind("POST /in HTTP/1.1\r\n", 0), 0u) << requests[0];
  EXPECT_NE(requests[0].find("Content-Type: application/x-ndjson\r\n"), std::string::npos);
  EXPECT_NE(requests[0].find("Authorization: Bearer t0k\r\n"), std::string::npos);
  EXPECT_NE(requests[0].find("User-Agent: me\r\n"), std::string::npos);
  EXPECT_EQ(requests[0].find("ingestd-sink-http"), std::string::npos);  // replaced
  EXPECT_EQ(body_of(requests[0]), "{\"seq\":1}\n{\"seq\":2}\n");
  EXPECT_EQ(body_of(requests[1]), "{\"seq\":3}\n");
}

TEST(HttpSink, ReconnectsWhenTheServerClosesTheConnection) {
  ScriptedServer server({"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"});
  Posting p("url: " + server.url() + "\n");
  ASSERT_EQ(p.write({"1"}).status, SinkStatus::kOk);
  SinkResult second = p.write({"2"});
  ASSERT_EQ(second.status, SinkStatus::kOk) << second.error;
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(p.ctx.count("connections"), 2u);
}

TEST(HttpSink, SeesAnIdleConnectionClosedByTheServerAndOpensANewOne) {
  ScriptedServer server({"quiet-close:HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"});
  Posting p("url: " + server.url() + "\n");
  ASSERT_EQ(p.write({"1"}).status, SinkStatus::kOk);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server.closed() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_EQ(server.closed(), 1);
  // The server's FIN crosses loopback right after its close(); give it a moment to land.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  SinkResult second = p.write({"2"});
  ASSERT_EQ(second.status, SinkStatus::kOk) << second.error;
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(p.ctx.count("transport_errors"), 0u);
}

TEST(HttpSink, GzipsTheJsonArrayBody) {
  ScriptedServer server({});
  Posting p("url: " + server.url() + "\nformat: json_array\ngzip: true\n");
  ASSERT_EQ(p.write({R"({"a":1})", R"({"a":2})"}).status, SinkStatus::kOk);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_NE(requests[0].find("Content-Encoding: gzip\r\n"), std::string::npos);
  EXPECT_NE(requests[0].find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_EQ(gunzip(body_of(requests[0])), R"([{"a":1},{"a":2}])");
}

TEST(HttpSink, SplitsABatchByMaxBodySize) {
  ScriptedServer server({});
  Posting p("url: " + server.url() + "\nmax_body_size: 10\n");
  ASSERT_EQ(p.write({"aaaa", "bbbb", "cccc"}).status, SinkStatus::kOk);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(body_of(requests[0]), "aaaa\nbbbb\n");
  EXPECT_EQ(body_of(requests[1]), "cccc\n");
}

TEST(HttpSink, StatusesMapToResultsAndKeepTheConnection) {
  ScriptedServer server({
      "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 4\r\n\r\nbusy",
      "HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nbad field x",
  });
  Posting p("url: " + server.url() + "\n");
  SinkResult r = p.write({"1"});
  EXPECT_EQ(r.status, SinkStatus::kRetryable);
  EXPECT_EQ(r.retry_after_ns, 2'000'000'000);
  EXPECT_EQ(r.error, "HTTP 503 Service Unavailable (Retry-After: 2): busy");
  r = p.write({"1"});
  EXPECT_EQ(r.status, SinkStatus::kPermanent);
  EXPECT_EQ(r.error, "HTTP 400 Bad Request: bad field x");
  EXPECT_EQ(p.write({"1"}).status, SinkStatus::kOk);
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(p.ctx.count("responses_5xx"), 1u);
  EXPECT_EQ(p.ctx.count("responses_4xx"), 1u);
  EXPECT_EQ(p.ctx.count("responses_2xx"), 1u);
}

TEST(HttpSink, ErrorsUseTheServersReasonPhraseOrTheStandardOne) {
  ScriptedServer server({
      "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 422 Field time missing\r\nContent-Length: 0\r\n\r\n",
  });
  Posting p("url: " + server.url() + "\n");
  EXPECT_EQ(p.write({"1"}).error, "HTTP 404 Not Found");
  EXPECT_EQ(p.write({"1"}).error, "HTTP 422 Field time missing");
}

TEST(HttpSink, AServerThatNeverAnswersIsRetryableAfterTheTimeout) {
  ScriptedServer server({"hang"});
  Posting p("url: " + server.url() + "\ntimeout: 200ms\n");
  const auto started = std::chrono::steady_clock::now();
  SinkResult r = p.write({"1"});
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(r.status, SinkStatus::kRetryable);
  EXPECT_EQ(r.error, "no answer from 127.0.0.1:" + std::to_string(server.port()) +
                         ": timed out after 200ms");
  EXPECT_GE(took, std::chrono::milliseconds(200));
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_EQ(p.ctx.count("timeouts"), 1u);
  EXPECT_EQ(p.ctx.count("transport_errors"), 1u);
  // The timed-out connection is dropped; the next batch gets a new one and an answer.
  EXPECT_EQ(p.write({"2"}).status, SinkStatus::kOk);
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpSink, ARefusedConnectionIsRetryable) {
  uint16_t port;
  {
    ScriptedServer gone({});
    port = gone.port();
  }
  Posting p("url: http://127.0.0.1:" + std::to_string(port) + "/\n");
  SinkResult r = p.write({"1"});
  EXPECT_EQ(r.status, SinkStatus::kRetryable);
  EXPECT_EQ(r.error,
            "cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
  EXPECT_EQ(p.ctx.count("transport_errors"), 1u);
  EXPECT_EQ(p.ctx.count("bytes"), 0u);
}

}  // namespace
}  // namespace ingestd::plugins

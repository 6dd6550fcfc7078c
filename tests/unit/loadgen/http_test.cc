#include "http.h"

#include <gtest/gtest.h>

#include <string>

namespace ingestd::loadgen {
namespace {

using State = ResponseParser::State;

TEST(UrlTest, HostPortAndTarget) {
  std::string error;
  auto u = parse_url("http://127.0.0.1:8080/api/visit/v1/?x=1", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/api/visit/v1/?x=1");
  u = parse_url("http://example.org", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  u = parse_url("http://[::1]:9000/event", error);
  ASSERT_TRUE(u) << error;
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
}

TEST(UrlTest, RefusalsSayWhy) {
  std::string error;
  EXPECT_FALSE(parse_url("https://x/", error));
  EXPECT_NE(error.find("https"), std::string::npos);
  EXPECT_FALSE(parse_url("127.0.0.1:80/", error));
  EXPECT_FALSE(parse_url("http://x:0/", error));
  EXPECT_FALSE(parse_url("http://x:70000/", error));
  EXPECT_FALSE(parse_url("http://:80/", error));
  EXPECT_NE(error.find("no host"), std::string::npos);
}

TEST(RequestHeadTest, HeadersInOrderEndingAtContentLength) {
  std::string error;
  const Url url = *parse_url("http://localhost:8080/event", error);
  EXPECT_EQ(request_head(url, "application/json", true, {{"Authorization", "Bearer t"}}),
            "POST /event HTTP/1.1\r\nHost: localhost:8080\r\nContent-Type: application/json\r\n"
            "Content-Encoding: gzip\r\nAuthorization: Bearer t\r\nContent-Length: ");
  auto h = parse_header(" X-Key :  a: b ");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->first, "X-Key");
  EXPECT_EQ(h->second, "a: b");
  EXPECT_FALSE(parse_header("no colon"));
  EXPECT_FALSE(parse_header(": empty name"));
}

// Feeds `data` one byte at a time; returns the last state.
State feed_bytes(ResponseParser& p, std::string_view data) {
  State s = State::kNeedMore;
  for (size_t i = 0; i < data.size(); ++i) {
    s = p.feed(data.substr(i, 1));
    if (s != State::kNeedMore) {
      EXPECT_EQ(i, data.size() - 1) << "complete before the end";
      break;
    }
  }
  return s;
}

TEST(ResponseParserTest, ContentLengthWholeAndByteByByte) {
  const std::string answer =
      "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n"
      "{\"records\":10}";
  ResponseParser p;
  p.reset();
  EXPECT_EQ(p.feed(answer), State::kComplete);
  EXPECT_EQ(p.status(), 202);
  EXPECT_TRUE(p.keep_alive());
  p.reset();
  EXPECT_EQ(feed_bytes(p, answer), State::kComplete);
  EXPECT_EQ(p.status(), 202);
}

TEST(ResponseParserTest, ChunkedNoBodyAndClose) {
  ResponseParser p;
  p.reset();
  EXPECT_EQ(feed_bytes(p,
                       "HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
                       "\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: 1\r\n\r\n"),
            State::kComplete);
  EXPECT_EQ(p.status(), 503);
  EXPECT_FALSE(p.keep_alive());
  p.reset();
  EXPECT_EQ(p.feed("HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n"), State::kComplete);
  EXPECT_EQ(p.status(), 204);
  p.reset();
  EXPECT_EQ(p.feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            State::kComplete);
  EXPECT_EQ(p.status(), 200);
}

TEST(ResponseParserTest, WithoutLengthTheAnswerEndsAtClose) {
  ResponseParser p;
  p.reset();
  EXPECT_EQ(p.feed("HTTP/1.0 200 OK\r\n\r\nbody..."), State::kNeedMore);
  EXPECT_EQ(p.feed("more"), State::kNeedMore);
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(p.finish_at_eof(), State::kComplete);
  p.reset();
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), State::kNeedMore);
  EXPECT_EQ(p.finish_at_eof(), State::kError);
}

TEST(ResponseParserTest, MalformedAnswersAreErrors) {
  ResponseParser p;
  p.reset();
  EXPECT_EQ(p.feed("SSH-2.0-OpenSSH\r\n\r\n"), State::kError);
  p.reset();
  EXPECT_EQ(p.feed("HTTP/1.1 2x2 OK\r\n\r\n"), State::kError);
  p.reset();
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"), State::kError);
  p.reset();
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), State::kError);
}

}  // namespace
}  // namespace ingestd::loadgen

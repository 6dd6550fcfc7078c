// The admin server on real loopback sockets: binding, bounds, slow clients.
#include "admin/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "admin/dashboard.h"

namespace ingestd::admin {
namespace {

class StubApi final : public control::DaemonApi {
 public:
  control::ReloadReport reload() override { return {}; }
  std::vector<std::string> validate(const std::string&) override { return {}; }
  std::string status_json() override {
    if (on_status) on_status();
    return "{}";
  }
  bool set_log_level(const std::string&) override { return true; }
  std::string state() const override { return "running"; }
  std::string config_path() const override { return ""; }
  control::ReloadReport last_reload() const override { return {}; }
  std::string aggregates_json(const std::string&, const Aggregator::InspectQuery&) override {
    return "[]";
  }
  std::vector<runtime::Family> metric_families() override { return {}; }
  Health health() override { return {true, "running"}; }

  std::function<void()> on_status;  // called by status_json(), on the server's answer thread
};

// An io_context run by one thread, as the daemon's io pool runs it.
struct Io {
  boost::asio::io_context context;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
      context.get_executor()};
  std::thread thread{[this] { context.run(); }};
  ~Io() {
    guard.reset();
    context.stop();
    thread.join();
  }
};

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Sends `request` and reads until the peer closes (or 5 s pass).
std::string http_exchange(uint16_t port, const std::string& request) {
  int fd = connect_to(port);
  if (fd < 0) return "connect failed";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

uint16_t port_of(const Server& s) {
  std::string a = s.address();
  return static_cast<uint16_t>(std::stoi(a.substr(a.rfind(':') + 1)));
}

// A server on a free loopback port, with its io thread and API.
struct Running {
  explicit Running(ServerOptions options = {}) {
    options.port = 0;
    server = Server::start(io.context, api, options, error);
    if (server) port = port_of(*server);
  }
  Io io;
  StubApi api;
  std::string error;
  std::unique_ptr<Server> server;
  uint16_t port = 0;
};

TEST(Server, AnswersOnAnyFreePortAndRefusesAPortInUse) {
  Running r;
  ASSERT_TRUE(r.server) << r.error;
  uint16_t port = r.port;
  EXPECT_NE(port, 0);
  std::string answer =
      http_exchange(port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("\r\n\r\nok: running\n"), std::string::npos) << answer;

  ServerOptions same;
  same.port = port;
  std::string refused;
  EXPECT_FALSE(Server::start(r.io.context, r.api, same, refused));
  EXPECT_EQ(refused, "admin: cannot listen on 127.0.0.1:" + std::to_string(port) +
                         ": Address already in use");
}

TEST(Server, OversizedAndMalformedRequestsGetAStatusNotACrash) {
  Running r;
  ASSERT_TRUE(r.server) << r.error;
  uint16_t port = r.port;
  std::string big = "GET /health HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  EXPECT_EQ(http_exchange(port, big).rfind("HTTP/1.1 431", 0), 0u);
  // Refused on its Content-Length alone, before a byte of the body is read.
  EXPECT_EQ(http_exchange(port, "POST /health HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
                .rfind("HTTP/1.1 413", 0),
            0u);
  EXPECT_EQ(http_exchange(port, "NONSENSE\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  // And it still answers.
  EXPECT_EQ(http_exchange(port, "GET /health HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
}

TEST(Server, ANotModifiedAnswerHasNoBodyAndKeepsTheConnection) {
  Running r;
  ASSERT_TRUE(r.server) << r.error;
  const Asset* page = find_dashboard_asset("/");
  ASSERT_NE(page, nullptr);
  // Two requests at once on one connection: the second is framed right only if the 304 claims
  // no body.
  std::string answer = http_exchange(
      r.port, "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + std::string(page->etag) +
                  "\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(answer.rfind("HTTP/1.1 304 Not Modified\r\n", 0), 0u) << answer;
  size_t second = answer.find("HTTP/1.1 200 OK\r\n");
  ASSERT_NE(second, std::string::npos) << answer;
  const std::string first = answer.substr(0, second);
  EXPECT_EQ(first.find("Content-Length"), std::string::npos) << first;
  EXPECT_TRUE(first.ends_with("\r\n\r\n")) << first;
  EXPECT_NE(first.find("ETag: " + std::string(page->etag)), std::string::npos) << first;
  EXPECT_TRUE(answer.ends_with("ok: running\n")) << answer;
}

TEST(Server, ASlowClientDoesNotHoldUpAnotherAndIsDroppedInTime) {
  ServerOptions options;
  options.request_timeout_ns = 300'000'000;
  Running r(options);
  ASSERT_TRUE(r.server) << r.error;
  uint16_t port = r.port;
  int slow = connect_to(port);
  ASSERT_GE(slow, 0);
  ::send(slow, "GET /heal", 9, MSG_NOSIGNAL);  // and nothing more
  auto began = std::chrono::steady_clock::now();
  EXPECT_EQ(http_exchange(port, "GET /health HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::milliseconds(250));
  // The slow one is closed once request_timeout has passed.
  char c;
  ssize_t n = ::recv(slow, &c, 1, 0);
  EXPECT_EQ(n, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(3));
  ::close(slow);
}

TEST(Server, AStopDuringAnAnswerEndsAKeptAliveConnectionOnceItIsAnswered) {
  Running r;
  ASSERT_TRUE(r.server) << r.error;
  // The answer waits until the test lets it go, so the stop comes while it is being made, when
  // the connection has no read or write to cancel.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, released = false;
  r.api.on_status = [&] {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return released; });
  };
  std::string answer;
  std::thread client(
      [&] { answer = http_exchange(r.port, "GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n"); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered; }));
  }
  const auto began = std::chrono::steady_clock::now();
  std::thread stopper([&] { r.server.reset(); });
  // The server has begun to stop once it no longer accepts; then the answer may go.
  const auto deadline = began + std::chrono::seconds(10);
  for (int fd; (fd = connect_to(r.port)) >= 0 && std::chrono::steady_clock::now() < deadline;)
    ::close(fd);
  {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  stopper.join();
  client.join();
  // The request in progress is answered, then the connection ends instead of waiting for the
  // next request until idle_timeout (or the stop's own 5 s bound).
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(1));
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_TRUE(answer.ends_with("\r\n\r\n{}\n")) << answer;
}

}  // namespace
}  // namespace ingestd::admin

// A one-thread HTTP server for the tests of the plugins' client loops (the scrape and SSE
// sources), and a check that such a loop stops at once whatever step it is at.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>

namespace ingestd::testing {

// A one-thread HTTP server on 127.0.0.1 that answers every request with `answer` (or nothing,
// when it is empty: the connection stays open until the server ends). It records each request.
class TinyServer {
 public:
  explicit TinyServer(std::string answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TinyServer() {
    done_ = true;
    thread_.join();
    for (int c : held_) ::close(c);
    ::close(fd_);
  }
  std::string url() const { return fmt::format("http://127.0.0.1:{}/metrics", port_); }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void serve() {
    while (!done_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        requests_.push_back(request);
      }
      if (answer_.empty()) {
        held_.push_back(c);
        continue;
      }
      ::send(c, answer_.data(), answer_.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  std::string answer_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::vector<int> held_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

// Starts a loop, stops it after exactly `steps` handlers have run on an io_context the test
// drives, and checks that it ends within a second; does so for every `steps` from 1 until the
// loop waits with nothing to run (for the network, a timeout or its next interval). A stop that
// lands between two steps (an operation has completed, the next has not begun) must end the loop
// as promptly as one during a wait. Returns how many stop points were tried.
//
// `make_loop(io, url)` returns a std::unique_ptr to a loop not yet started that talks to `url`,
// with start(), stop(), wait_for(timeout_ns) and error(). A TinyServer answering `answer` serves
// each attempt. The loop's own timeouts must be longer than a second, or a lost stop goes unseen.
template <class MakeLoop>
size_t stop_at_every_step(const std::string& answer, MakeLoop make_loop) {
  size_t tried = 0;
  for (size_t steps = 1;; ++steps) {
    TinyServer server(answer);
    boost::asio::io_context io;
    auto loop = make_loop(io, server.url());
    loop->start();
    bool waiting = false;
    for (size_t i = 0; i < steps && !waiting; ++i)
      waiting = io.run_one_for(std::chrono::milliseconds(500)) == 0;
    const auto stop_at = std::chrono::steady_clock::now();
    loop->stop();
    const auto deadline = stop_at + std::chrono::seconds(10);
    while (!loop->wait_for(0) && std::chrono::steady_clock::now() < deadline)
      io.run_one_for(std::chrono::milliseconds(50));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - stop_at);
    EXPECT_TRUE(loop->wait_for(0)) << "stopped after " << steps << " step(s)";
    EXPECT_LT(took.count(), 1000) << "stopped after " << steps << " step(s)";
    EXPECT_EQ(loop->error(), "");
    ++tried;
    if (waiting || ::testing::Test::HasFailure()) break;
  }
  return tried;
}

}  // namespace ingestd::testing

#include "load.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <thread>
#include <vector>

#include "http.h"
#include "schedule.h"

namespace ingestd::loadgen {

namespace {

int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
int64_t monotonic_ns() {
  return clock_ns(CLOCK_MONOTONIC);
}

constexpr int64_t kScanInterval = 100'000'000;  // timeouts are checked this often

// One connection and the request it carries. The connection outlives its requests (keep-alive);
// `out` and the parser keep their buffers from one request to the next.
struct Conn {
  enum class State { kIdle, kConnecting, kBackoff, kWriting, kReading, kDone };
  State state = State::kIdle;
  int fd = -1;
  bool readable = false;  // edge-triggered: ready until a read or write says EAGAIN
  bool writable = false;
  uint64_t records = 0;
  size_t raw_size = 0;
  size_t body_size = 0;
  std::string out;  // head + length + blank line + body
  size_t written = 0;
  int64_t sent_ns = 0;   // the request's first byte (or the connect's start)
  int64_t due_ns = 0;    // with a rate: when the schedule wanted the request sent
  int64_t retry_ns = 0;  // kBackoff: when to connect again
  ResponseParser parser;
};

// Drives `conns` connections through one epoll loop on the calling thread.
class Worker {
 public:
  Worker(const LoadOptions& options, Schedule& schedule, const std::atomic<bool>& stop,
         uint32_t conns)
      : options_(options), schedule_(schedule), stop_(stop), conns_(conns) {
    std::string error;
    renderer_.init(options.body, error);  // compiled once already by the caller
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    for (Conn& c : conns_) idle_.push_back(&c);
  }
  ~Worker() {
    for (Conn& c : conns_) close_conn(c);
    if (epoll_ >= 0) ::close(epoll_);
  }

  LoadResult run() {
    std::vector<epoll_event> events(std::max<size_t>(conns_.size(), 16));
    int64_t last_scan = monotonic_ns();
    while (true) {
      int64_t now = monotonic_ns();
      int64_t wake = now + kScanInterval;
      if (stop_.load(std::memory_order_relaxed)) schedule_.stop();
      claim_requests(now, wake);
      for (Conn& c : conns_) {
        if (in_backoff_ == 0) break;  // the usual case: no scan
        if (c.state != Conn::State::kBackoff) continue;
        const bool over =
            options_.duration_ns > 0 && now >= schedule_.start_ns() + options_.duration_ns;
        if (over || stop_.load(std::memory_order_relaxed)) {
          finish(c);  // the request that could not connect is given up
        } else if (c.retry_ns <= now) {
          connect_conn(c, now);
        } else {
          wake = std::min(wake, c.retry_ns);
        }
      }
      if (now - last_scan >= kScanInterval) {
        check_timeouts(now);
        last_scan = now;
      }
      if (done_ == conns_.size()) break;
      if (!idle_.empty() && idle_ready_) continue;  // a connection came back idle: claim again
      const int64_t wait = std::max<int64_t>(0, wake - monotonic_ns());
      const int timeout_ms = static_cast<int>((wait + 999'999) / 1'000'000);
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout_ms);
      for (int i = 0; i < n; ++i) {
        Conn& c = *static_cast<Conn*>(events[i].data.ptr);
        const uint32_t ev = events[i].events;
        if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) c.readable = true;
        if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c.writable = true;
        progress(c, monotonic_ns());
      }
    }
    result_.seconds = static_cast<double>(last_answer_ns_ - schedule_.start_ns()) / 1e9;
    return std::move(result_);
  }

 private:
  void claim_requests(int64_t now, int64_t& wake) {
    idle_ready_ = false;
    while (!idle_.empty()) {
      Conn& c = *idle_.back();
      const Schedule::Claim claim = schedule_.claim(now);
      if (claim.kind == Schedule::Claim::kWait) {
        wake = std::min(wake, now + claim.wait_ns);
        return;
      }
      idle_.pop_back();
      if (claim.kind == Schedule::Claim::kDone) {
        finish(c);
        continue;
      }
      prepare(c, claim.index);
      c.due_ns = schedule_.due_ns(claim.index);
      if (c.fd < 0) {
        connect_conn(c, now);
      } else {
        start_request(c, now);
        progress(c, now);
      }
    }
  }

  void prepare(Conn& c, uint64_t index) {
    const std::string_view body = renderer_.render(index, clock_ns(CLOCK_REALTIME));
    c.records = options_.body.records;
    c.raw_size = renderer_.last_raw_size();
    c.body_size = body.size();
    c.out.assign(options_.head);
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, body.size());
    c.out.append(digits, end);
    c.out.append("\r\n\r\n");
    c.out.append(body);
  }

  void connect_conn(Conn& c, int64_t now) {
    if (c.state == Conn::State::kBackoff) --in_backoff_;
    close_conn(c);
    c.state = Conn::State::kConnecting;
    c.sent_ns = now;
    c.fd = ::socket(options_.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) return connect_failed(c, now);
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c.readable = c.writable = false;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &c;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&options_.address),
                  options_.address_size) != 0 &&
        errno != EINPROGRESS)
      return connect_failed(c, now);
  }

  void connect_failed(Conn& c, int64_t now) {
    ++result_.connect_errors;
    close_conn(c);
    c.state = Conn::State::kBackoff;
    ++in_backoff_;
    c.retry_ns = now + options_.connect_retry_ns;
  }

  void start_request(Conn& c, int64_t now) {
    c.state = Conn::State::kWriting;
    c.written = 0;
    c.sent_ns = now;
    c.parser.reset();
  }

  // Moves the connection's request on as far as the socket allows.
  void progress(Conn& c, int64_t now) {
    if (c.state == Conn::State::kConnecting) {
      if (!c.writable) return;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return connect_failed(c, now);
      ++result_.connections_opened;
      start_request(c, now);
    }
    if (c.state == Conn::State::kWriting) {
      while (c.written < c.out.size() && c.writable) {
        const ssize_t n =
            ::send(c.fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
        if (n > 0) {
          c.written += static_cast<size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          c.writable = false;
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else {
          return request_failed(c, result_.io_errors);
        }
      }
      if (c.written < c.out.size()) return;
      result_.body_bytes += c.body_size;
      result_.raw_bytes += c.raw_size;
      c.state = Conn::State::kReading;
    }
    if (c.state == Conn::State::kReading) {
      while (c.readable) {
        const ssize_t n = ::recv(c.fd, buffer_.data(), buffer_.size(), 0);
        ResponseParser::State s;
        if (n > 0) {
          s = c.parser.feed(std::string_view(buffer_.data(), static_cast<size_t>(n)));
        } else if (n == 0) {
          s = c.parser.finish_at_eof();
          if (s == ResponseParser::State::kError) return request_failed(c, result_.io_errors);
          c.parser.reset();  // the connection ends with the answer
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          c.readable = false;
          return;
        } else if (errno == EINTR) {
          continue;
        } else {
          return request_failed(c, result_.io_errors);
        }
        if (s == ResponseParser::State::kError) return request_failed(c, result_.protocol_errors);
        if (s == ResponseParser::State::kComplete) {
          answered(c, monotonic_ns(), n == 0);
          return;
        }
      }
    }
  }

  void answered(Conn& c, int64_t now, bool closed) {
    // With a rate, from when the request was due: a request that waited for a free connection
    // (or for one to be made) waited for the server too, and leaving that out would hide an
    // overload from the percentiles (coordinated omission).
    const int64_t from = options_.rate > 0 ? std::min(c.due_ns, c.sent_ns) : c.sent_ns;
    result_.latency.record(static_cast<uint64_t>(std::max<int64_t>(0, now - from)));
    const int status = c.parser.status();
    ++result_.statuses[static_cast<size_t>(std::clamp(status, 0, 999))];
    ++result_.answered;
    if (status >= 200 && status < 300) {
      ++result_.ok;
      result_.ok_records += c.records;
    }
    last_answer_ns_ = std::max(last_answer_ns_, now);
    if (closed || !c.parser.keep_alive()) close_conn(c);
    c.state = Conn::State::kIdle;
    idle_.push_back(&c);
    idle_ready_ = true;
  }

  void request_failed(Conn& c, uint64_t& counter) {
    ++counter;
    close_conn(c);
    c.state = Conn::State::kIdle;
    idle_.push_back(&c);
    idle_ready_ = true;
  }

  void check_timeouts(int64_t now) {
    for (Conn& c : conns_) {
      if (now - c.sent_ns < options_.timeout_ns) continue;
      if (c.state == Conn::State::kConnecting) {
        connect_failed(c, now);
      } else if (c.state == Conn::State::kWriting || c.state == Conn::State::kReading) {
        request_failed(c, result_.timeouts);
      }
    }
  }

  void finish(Conn& c) {
    if (c.state == Conn::State::kBackoff) --in_backoff_;
    close_conn(c);
    c.state = Conn::State::kDone;
    ++done_;
    last_answer_ns_ = std::max(last_answer_ns_, monotonic_ns());
  }

  void close_conn(Conn& c) {
    if (c.fd >= 0) {
      ::close(c.fd);  // also removes it from the epoll set
      c.fd = -1;
    }
  }

  const LoadOptions& options_;
  Schedule& schedule_;
  const std::atomic<bool>& stop_;
  std::vector<Conn> conns_;
  std::vector<Conn*> idle_;
  bool idle_ready_ = false;
  size_t done_ = 0;
  size_t in_backoff_ = 0;  // connections in kBackoff
  int epoll_ = -1;
  BodyRenderer renderer_;
  std::vector<char> buffer_ = std::vector<char>(64 * 1024);  // what recv() reads into
  LoadResult result_;
  int64_t last_answer_ns_ = 0;
};

}  // namespace

void LoadResult::merge(const LoadResult& other) {
  latency.merge(other.latency);
  for (size_t i = 0; i < statuses.size(); ++i) statuses[i] += other.statuses[i];
  answered += other.answered;
  ok += other.ok;
  ok_records += other.ok_records;
  body_bytes += other.body_bytes;
  raw_bytes += other.raw_bytes;
  connect_errors += other.connect_errors;
  io_errors += other.io_errors;
  timeouts += other.timeouts;
  protocol_errors += other.protocol_errors;
  connections_opened += other.connections_opened;
  seconds = std::max(seconds, other.seconds);
}

LoadResult run_load(const LoadOptions& options, const std::atomic<bool>& stop) {
  const uint32_t threads = std::clamp<uint32_t>(options.threads, 1, options.connections);
  Schedule schedule(options.rate, options.requests, options.duration_ns, monotonic_ns());
  std::vector<LoadResult> results(threads);
  std::vector<std::thread> workers;
  for (uint32_t t = 0; t < threads; ++t) {
    const uint32_t conns = options.connections / threads + (t < options.connections % threads);
    workers.emplace_back([&, t, conns] {
      Worker worker(options, schedule, stop, conns);
      results[t] = worker.run();
    });
  }
  for (std::thread& w : workers) w.join();
  LoadResult total;
  for (const LoadResult& r : results) total.merge(r);
  return total;
}

}  // namespace ingestd::loadgen

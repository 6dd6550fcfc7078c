// The only translation unit of the source that includes Boost.Beast.
#include "server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "shared/net/async_push.h"

namespace ingestd::plugins::http_source {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
// A connection's socket, stream and timer name their strand's type: no type-erased executor is
// copied per operation.
using Socket = tcp::socket::rebind_executor<Strand>::other;
using Stream = beast::basic_stream<tcp, Strand>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Strand>;
using std::chrono::nanoseconds;

// Every step completes with (error_code, value) instead of throwing.
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
// What the wait for a request's first byte reads at most; a small buffer per idle connection.
constexpr size_t kFirstRead = 1024;
// A read buffer larger than this is given back between requests (a connection waiting for its
// next request holds at most this much).
constexpr size_t kKeptReadCapacity = 4096;
// A body buffer larger than this is given back after its request rather than kept for the next.
constexpr size_t kKeptBodyCapacity = 256 << 10;
// A refused request's remaining bytes are read and dropped up to this much before closing.
constexpr uint64_t kLingerBytes = 64 << 20;
constexpr int64_t kLingerMaxNs = 5'000'000'000;
// How long accept() pauses after an error such as EMFILE, and how often such errors are logged.
constexpr auto kAcceptPause = std::chrono::milliseconds(50);
constexpr int64_t kAcceptLogIntervalNs = 10'000'000'000;
// Requests whose records wait to be pushed may hold this many batches' worth of bytes
// (BatchLimits::max_bytes); past that a request is answered 503 at once.
constexpr size_t kMaxPendingBatches = 4;

std::string error_body(std::string_view message) {
  std::string body = "{\"error\":\"";
  for (char c : message)
    if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) body += c;
  body += "\"}\n";
  return body;
}

}  // namespace

struct Connection;

// A request waiting for the push of the batch its records went into.
struct Waiter {
  std::weak_ptr<Connection> conn;
  uint64_t seq;
};

// A batch being filled by requests, and who waits for its push.
struct Pending {
  BatchPtr batch;
  std::vector<Waiter> waiters;
  size_t bytes = 0;
  std::chrono::steady_clock::time_point give_up;  // the first request's push_timeout
};

// What the flusher tells a waiting request.
enum PushStatus : int { kPushWaiting = 0, kPushed, kPushRefused, kPushStopping };

struct Server::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, const Settings& s, const SourceCounters& c, Context& ctx)
      : io(io),
        settings(s),
        counters(c),
        ctx(ctx),
        component(ctx.name()),
        strand(asio::make_strand(io)),
        acceptor(strand),
        accept_pause(strand),
        flush_signal(strand),
        push_timer(strand) {}

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self);
  static asio::awaitable<void> flush_loop(std::shared_ptr<Impl> self);
  void accept_error(const beast::error_code& ec);
  void finished(bool& running) {
    std::lock_guard lock(mu);
    running = false;
    cv.notify_all();
  }
  // Adds a request's records to the open batch (see Pending); false when too much already
  // waits to be pushed.
  bool append(std::weak_ptr<Connection> conn, uint64_t seq, const Route& route,
              std::string_view body, const std::vector<std::string_view>& records,
              std::optional<AckRef>& ack, int64_t now_ns);
  void tell(std::vector<Waiter>& waiters, int push_status);

  asio::io_context& io;
  const Settings& settings;
  SourceCounters counters;
  Context& ctx;
  Output* out = nullptr;
  const std::string component;
  Strand strand;
  tcp::acceptor acceptor;
  asio::steady_timer accept_pause;
  std::atomic<bool> stopping{false};
  int64_t accept_logged_ns = 0;  // on the strand
  uint64_t accept_errors = 0;    // on the strand, since the last log
  BatchLimits limits;

  // Requests are pushed together: the records of the requests that arrive while the flusher
  // (flush_loop, on the strand) is busy, or before it runs, go into one batch, so that a queue
  // operation and a wake-up of the parser are paid per batch rather than per request. The last
  // entry is the open batch; the flusher takes them from the front.
  std::mutex batch_mu;
  std::deque<Pending> pending;
  size_t pending_bytes = 0;
  bool flusher_idle = false;  // waiting on flush_signal
  bool wake_posted = false;
  asio::steady_timer flush_signal;  // cancelled to wake the flusher
  asio::steady_timer push_timer;    // the flusher's backoff while downstream is full

  std::mutex mu;
  std::condition_variable cv;
  bool accepting = false;
  bool flushing = false;
  size_t live = 0;                        // connections not yet destroyed
  std::unordered_set<Connection*> conns;  // the same, to stop them
};

// One client connection: its requests one after another, on a strand of its own.
struct Connection : std::enable_shared_from_this<Connection> {
  Connection(std::shared_ptr<Server::Impl> srv, Socket socket)
      : server(std::move(srv)),
        settings(server->settings),
        stream(std::move(socket)),
        timer(stream.get_executor()) {
    std::lock_guard lock(server->mu);
    ++server->live;
    server->conns.insert(this);
  }

  ~Connection() {
    server->counters.connections_closed->add();
    std::lock_guard lock(server->mu);
    --server->live;
    server->conns.erase(this);
    server->cv.notify_all();
  }

  bool stopping() const { return server->stopping.load(std::memory_order_relaxed); }

  // On the strand: ends what is in progress (a read, a push, the wait for an acknowledgement).
  void cancel() {
    stream.cancel();
    timer.cancel();
  }

  static asio::awaitable<void> session(std::shared_ptr<Connection> self) {
    co_await self->serve();
    beast::error_code ignored;
    self->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    self->stream.close();
  }

  asio::awaitable<void> serve() {
    while (!stopping()) {
      if (buffer.size() == 0) {
        // Between requests: wait for the next one's first byte, up to idle_timeout.
        stream.expires_after(nanoseconds(settings.idle_timeout_ns));
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(kFirstRead), kToken);
        if (ec) {
          if (ec == beast::error::timeout) server->counters.timeouts->add();
          co_return;
        }
        buffer.commit(n);
        take_available();
      }
      if (!co_await serve_request()) co_return;
      if (buffer.size() == 0 && buffer.capacity() > kKeptReadCapacity) buffer.shrink_to_fit();
    }
  }

  // Adds to the buffer what has already arrived beyond the first read (the rest of a request
  // larger than kFirstRead), without a wait or a timer: the socket is non-blocking.
  void take_available() {
    beast::error_code ec;
    const size_t available = stream.socket().available(ec);
    if (ec || available == 0) return;
    const size_t n = stream.socket().read_some(
        buffer.prepare(std::min<size_t>(available, settings.max_header_size + kFirstRead)), ec);
    if (!ec) buffer.commit(n);
  }

  // Reads, handles and answers one request; true when the connection goes on.
  asio::awaitable<bool> serve_request() {
    body.clear();
    bhttp::request_parser<bhttp::string_body> parser(std::piecewise_construct,
                                                     std::make_tuple(std::move(body)));
    parser.header_limit(settings.max_header_size);
    parser.body_limit(settings.max_body_size);
    stream.expires_after(nanoseconds(settings.header_timeout_ns));
    auto [header_ec, header_bytes] =
        co_await bhttp::async_read_header(stream, buffer, parser, kToken);
    // A Content-Length over the limit fails here, once the whole header is read.
    const bool too_large = header_ec == bhttp::error::body_limit;
    if (header_ec && !too_large) {
      if (header_ec == beast::error::timeout) {
        server->counters.timeouts->add();  // the stream has closed the socket
      } else if (stopping()) {
        co_await answer(settings.unrouted, 503, "the source is stopping", false);
      } else if (header_ec == bhttp::error::header_limit) {
        co_await refuse(
            settings.unrouted, 431,
            fmt::format("the request header is larger than {} bytes", settings.max_header_size));
      } else if (header_ec != bhttp::error::end_of_stream && header_ec != asio::error::eof &&
                 header_ec != asio::error::connection_reset) {
        co_await refuse(settings.unrouted, 400,
                        fmt::format("malformed request: {}", header_ec.message()));
      }
      co_return false;
    }

    auto& req = parser.get();
    const Route* route = find_route(settings.routes, req.target());
    Verdict verdict;
    if (!route) {
      route = &settings.unrouted;
      verdict.status = 404;
      verdict.message = "no route for this path";
    } else {
      verdict =
          check_request(settings, *route, req.method_string(), req[bhttp::field::content_type],
                        req[bhttp::field::content_encoding], req[bhttp::field::authorization]);
    }
    if (too_large && verdict.status == 0) {
      co_await refuse(
          *route, 413,
          fmt::format("the body is larger than max_body_size ({} bytes)", settings.max_body_size));
      co_return false;
    }
    const bool expects_continue = beast::iequals(req[bhttp::field::expect], "100-continue");
    if (verdict.status != 0 && (too_large || expects_continue)) {
      // The body is not wanted and may be large or never sent: answer and close.
      co_await refuse(*route, verdict.status, std::string(verdict.message));
      co_return false;
    }
    if (expects_continue && !parser.is_done()) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(kContinue), kToken);
      if (ec) co_return false;
    }
    if (!parser.is_done()) {
      stream.expires_after(nanoseconds(settings.body_timeout_ns));
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, kToken);
      if (ec) {
        if (ec == beast::error::timeout) {
          server->counters.timeouts->add();
        } else if (stopping()) {
          co_await answer(*route, 503, "the source is stopping", false);
        } else if (ec == bhttp::error::body_limit) {
          co_await refuse(*route, 413,
                          fmt::format("the body is larger than max_body_size ({} bytes)",
                                      settings.max_body_size));
        } else if (ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
                   ec != asio::error::eof && ec != asio::error::connection_reset) {
          co_await refuse(*route, 400, fmt::format("malformed request: {}", ec.message()));
        }
        co_return false;
      }
    }
    const bool keep_alive = req.keep_alive();
    const bool http10 = req.version() == 10;
    std::string_view received = parser.get().body();
    server->counters.bytes->add(received.size());

    int status = verdict.status;
    std::string message(verdict.message);
    size_t records = 0;
    if (status == 0) {
      status = prepare_body(settings, *route, verdict, received, scratch);
      if (status != 0) {
        message = scratch.error;
      } else {
        records = scratch.records.size();
        status = co_await deliver(*route, received, message);
      }
    }
    body = std::move(parser.get().body());
    if (body.capacity() > kKeptBodyCapacity) std::string().swap(body);
    const bool go_on = keep_alive && !stopping();
    const bool written = co_await answer(*route, status, message, go_on, records, http10);
    co_return go_on&& written;
  }

  // Hands the records in scratch.records (views into `received`) to the flusher and waits for
  // the push of their batch, then with ack: durable for its acknowledgement. Returns the status
  // to answer.
  asio::awaitable<int> deliver(const Route& route, std::string_view received,
                               std::string& message) {
    if (scratch.records.empty()) co_return settings.durable ? 200 : 202;
    if (stopping()) {
      message = "the source is stopping";
      co_return 503;
    }
    const uint64_t seq = ++req_seq;
    push_status = kPushWaiting;
    ack_result = 0;
    std::optional<AckRef> ack;
    if (settings.durable) {
      ack.emplace(AckRef::make([weak = weak_from_this(), seq](bool ok) {
        // Any thread, possibly inside try_push(): hand the verdict to the connection's strand.
        if (auto c = weak.lock())
          asio::post(c->stream.get_executor(), [c, seq, ok] {
            if (c->req_seq != seq || c->ack_result != 0) return;
            c->ack_result = ok ? 1 : 2;
            c->timer.cancel();
          });
      }));
    }
    if (!server->append(weak_from_this(), seq, route, received, scratch.records, ack,
                        server->ctx.clock().now_ns())) {
      message = "downstream is full; retry later";
      co_return 503;
    }
    // The flusher always tells (pushed, refused or stopping); the deadline is a safety net.
    const auto safety = std::chrono::steady_clock::now() + nanoseconds(settings.push_timeout_ns) +
                        std::chrono::seconds(30);
    while (push_status == kPushWaiting && !stopping() &&
           std::chrono::steady_clock::now() < safety) {
      timer.expires_at(safety);
      co_await timer.async_wait(kToken);
    }
    if (push_status != kPushed) {
      message = push_status == kPushRefused ? "downstream is full; retry later"
                                            : "the source is stopping";
      co_return 503;
    }
    if (!settings.durable) co_return 202;
    const auto deadline = std::chrono::steady_clock::now() + nanoseconds(settings.ack_timeout_ns);
    while (ack_result == 0 && !stopping() && std::chrono::steady_clock::now() < deadline) {
      timer.expires_at(deadline);
      co_await timer.async_wait(kToken);
    }
    if (ack_result == 1) co_return 200;
    if (ack_result == 2) {
      message = "the records were taken but not delivered (see the daemon's log)";
      co_return 500;
    }
    if (stopping()) {
      message = "the source is stopping; the records may still be delivered";
      co_return 503;
    }
    message = fmt::format(
        "the records were taken but not acknowledged within {} ms; they may still be delivered",
        settings.ack_timeout_ns / 1'000'000);
    co_return 504;
  }

  // Writes an answer, formatted into a buffer kept by the connection; true when it was written.
  asio::awaitable<bool> answer(const Route& route, int status, std::string_view message,
                               bool keep_alive, size_t records = 0, bool http10 = false) {
    route.counters.count(status);
    if (status >= 300) server->counters.rejected->add();
    std::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
    answer_body.clear();
    if (status < 300) {
      fmt::format_to(std::back_inserter(answer_body), "{{\"records\":{}}}\n", records);
    } else {
      answer_body = error_body(message);
    }
    out.clear();
    auto o = std::back_inserter(out);
    fmt::format_to(o,
                   "HTTP/1.1 {} {}\r\nServer: ingestd\r\nContent-Type: application/json\r\n"
                   "Content-Length: {}\r\n",
                   status, reason, answer_body.size());
    if (!keep_alive) {
      out += "Connection: close\r\n";
    } else if (http10) {
      out += "Connection: keep-alive\r\n";
    }
    if (status == 503) fmt::format_to(o, "Retry-After: {}\r\n", settings.retry_after_s);
    if (status == 401) out += "WWW-Authenticate: Bearer realm=\"ingestd\"\r\n";
    if (status == 405)
      fmt::format_to(o, "Allow: {}\r\n",
                     route.post && route.put ? "POST, PUT"
                     : route.put             ? "PUT"
                                             : "POST");
    out += "\r\n";
    out += answer_body;
    // An answer nearly always fits the socket's send buffer: written at once, without arming
    // the stream's timer; the rest, if any, within body_timeout.
    beast::error_code ec;
    const size_t written = stream.socket().write_some(asio::buffer(out), ec);
    if (ec && ec != asio::error::would_block) co_return false;
    if (written == out.size()) co_return true;
    stream.expires_after(nanoseconds(settings.body_timeout_ns));
    auto [write_ec, n] = co_await asio::async_write(stream, asio::buffer(out) + written, kToken);
    co_return !write_ec;
  }

  // Answers a request whose body is not read, then closes the connection only after reading and
  // dropping what the client still sends (up to a limit): closing with unread bytes would reset
  // the connection, and the client might never see the answer.
  asio::awaitable<void> refuse(const Route& route, int status, std::string message) {
    if (!co_await answer(route, status, message, false)) co_return;
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.expires_after(nanoseconds(std::min(settings.body_timeout_ns, kLingerMaxNs)));
    uint64_t dropped = 0;
    while (dropped < kLingerBytes) {
      buffer.clear();
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(16 << 10), kToken);
      if (ec) break;
      dropped += n;
    }
    buffer.clear();
  }

  std::shared_ptr<Server::Impl> server;
  const Settings& settings;
  Stream stream;
  Timer timer;  // the waits for a push and for an acknowledgement
  beast::flat_buffer buffer;
  std::string body;  // the body buffer, kept from request to request
  std::string out;   // an answer, kept likewise
  std::string answer_body;
  Scratch scratch;
  // On the strand: the request whose push and acknowledgement are awaited, and their outcome.
  uint64_t req_seq = 0;
  int push_status = kPushWaiting;
  int ack_result = 0;  // 0 pending, 1 ok, 2 failed
};

asio::awaitable<void> Server::Impl::accept_loop(std::shared_ptr<Impl> self) {
  for (;;) {
    auto [ec, socket] = co_await self->acceptor.async_accept(asio::make_strand(self->io), kToken);
    if (self->stopping) break;
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      self->accept_error(ec);
      self->accept_pause.expires_after(kAcceptPause);
      co_await self->accept_pause.async_wait(kToken);
      continue;
    }
    size_t live;
    {
      std::lock_guard lock(self->mu);
      live = self->live;
    }
    if (live >= self->settings.max_connections) {
      self->counters.connections_refused->add();
      beast::error_code ignored;
      socket.close(ignored);
      continue;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    socket.non_blocking(true, ignored);  // for the direct reads and writes, see Connection
    self->counters.connections_opened->add();
    auto c = std::make_shared<Connection>(self, std::move(socket));
    auto executor = c->stream.get_executor();
    asio::co_spawn(executor, Connection::session(std::move(c)), [self](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        self->ctx.logf(LogLevel::kError, "a connection failed: {}", x.what());
      } catch (...) {
        self->ctx.log(LogLevel::kError, "a connection failed");
      }
    });
  }
  self->finished(self->accepting);
}

bool Server::Impl::append(std::weak_ptr<Connection> conn, uint64_t seq, const Route& route,
                          std::string_view body, const std::vector<std::string_view>& records,
                          std::optional<AckRef>& ack, int64_t now_ns) {
  std::lock_guard lock(batch_mu);
  if (pending_bytes >= kMaxPendingBatches * limits.max_bytes) return false;
  if (pending.empty() || (!pending.back().batch->empty() &&
                          (pending.back().batch->size() + records.size() > limits.max_events ||
                           pending.back().bytes + body.size() > limits.max_bytes))) {
    Pending& p = pending.emplace_back();
    p.batch = std::make_unique<Batch>(
        std::min<size_t>(limits.max_bytes, std::max<size_t>(body.size() * 4, 16 << 10)));
    p.batch->ingest_time_ns = now_ns;
    p.batch->origin.component = component;
    p.give_up = std::chrono::steady_clock::now() + nanoseconds(settings.push_timeout_ns);
  }
  Pending& p = pending.back();
  append_records(*p.batch, route, body, records, now_ns);
  if (ack) p.batch->acks.push_back(std::move(*ack));
  p.waiters.push_back({std::move(conn), seq});
  p.bytes += body.size();
  pending_bytes += body.size();
  if (flusher_idle && !wake_posted) {
    wake_posted = true;
    asio::post(strand, [self = shared_from_this()] { self->flush_signal.cancel(); });
  }
  return true;
}

void Server::Impl::tell(std::vector<Waiter>& waiters, int push_status) {
  for (Waiter& w : waiters)
    if (auto c = w.conn.lock())
      asio::post(c->stream.get_executor(), [c, seq = w.seq, push_status] {
        if (c->req_seq != seq || c->push_status != kPushWaiting) return;
        c->push_status = push_status;
        c->timer.cancel();
      });
}

asio::awaitable<void> Server::Impl::flush_loop(std::shared_ptr<Impl> self) {
  for (;;) {
    Pending p;
    {
      std::lock_guard lock(self->batch_mu);
      if (!self->pending.empty()) {
        p = std::move(self->pending.front());
        self->pending.pop_front();
        self->pending_bytes -= p.bytes;
      } else {
        self->flusher_idle = true;
      }
    }
    if (!p.batch) {
      if (self->stopping) break;
      self->flush_signal.expires_at(std::chrono::steady_clock::time_point::max());
      co_await self->flush_signal.async_wait(kToken);
      std::lock_guard lock(self->batch_mu);
      self->flusher_idle = false;
      self->wake_posted = false;
      continue;
    }
    const size_t records = p.batch->size();
    PushResult r = co_await net::async_push(*self->out, p.batch, self->push_timer, [&] {
      return self->stopping.load() || std::chrono::steady_clock::now() >= p.give_up;
    });
    if (r == PushResult::kOk) {
      self->counters.records->add(records);
      self->tell(p.waiters, kPushed);
      continue;
    }
    if (p.batch) p.batch->resolve_acks(false);  // refused: nobody waits for these
    self->tell(p.waiters, r == PushResult::kFull && !self->stopping ? kPushRefused : kPushStopping);
  }
  // Stopping: what is still pending is refused; connections are being stopped too.
  std::deque<Pending> left;
  {
    std::lock_guard lock(self->batch_mu);
    left.swap(self->pending);
    self->pending_bytes = 0;
  }
  for (Pending& p : left) {
    p.batch->resolve_acks(false);
    self->tell(p.waiters, kPushStopping);
  }
}

void Server::Impl::accept_error(const beast::error_code& ec) {
  ++accept_errors;
  const int64_t now = ctx.clock().monotonic_ns();
  if (accept_logged_ns != 0 && now - accept_logged_ns < kAcceptLogIntervalNs) return;
  ctx.logf(LogLevel::kWarn,
           "cannot accept connections: {} ({} time(s) since the last report; raise the open file "
           "limit (LimitNOFILE) or lower max_connections)",
           ec.message(), accept_errors);
  accept_logged_ns = now;
  accept_errors = 0;
}

Server::Server(asio::io_context& io, const Settings& settings, const SourceCounters& counters,
               Context& ctx)
    : impl_(std::make_shared<Impl>(io, settings, counters, ctx)) {}

Server::~Server() = default;

bool Server::listen(std::string& error) {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->settings.host, ec);
  tcp::endpoint endpoint(address, impl_->settings.port);
  auto& acceptor = impl_->acceptor;
  if (!ec) acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  // A source replaced by a reload binds its port while its predecessor still listens (the
  // runtime starts the new one first); only this user's sockets may share it.
  using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  if (!ec) acceptor.set_option(ReusePort(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = fmt::format("cannot listen on {}:{}: {}", impl_->settings.host, impl_->settings.port,
                        ec.message());
    beast::error_code ignored;
    acceptor.close(ignored);
    return false;
  }
  return true;
}

uint16_t Server::port() const {
  beast::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void Server::serve(Output& out) {
  impl_->out = &out;
  impl_->limits = impl_->ctx.batch_limits();
  {
    std::lock_guard lock(impl_->mu);
    impl_->accepting = true;
    impl_->flushing = true;
  }
  std::shared_ptr<Impl> self = impl_;
  asio::co_spawn(impl_->strand, Impl::flush_loop(self), [self](std::exception_ptr e) {
    if (e) self->ctx.log(LogLevel::kError, "the flusher failed; requests are answered 503");
    self->finished(self->flushing);
  });
  asio::co_spawn(impl_->strand, Impl::accept_loop(self), [self](std::exception_ptr e) {
    if (e) {
      self->ctx.log(LogLevel::kError, "the accept loop failed; no more connections are taken");
      self->finished(self->accepting);
    }
  });
}

void Server::stop() {
  impl_->stopping = true;
  asio::post(impl_->strand, [self = impl_] {
    beast::error_code ignored;
    self->acceptor.close(ignored);
    self->accept_pause.cancel();
    self->flush_signal.cancel();
    self->push_timer.cancel();
  });
  // Collected first: the last reference to a connection may be dropped here, and its destructor
  // takes the mutex.
  std::vector<std::shared_ptr<Connection>> alive;
  {
    std::lock_guard lock(impl_->mu);
    alive.reserve(impl_->conns.size());
    for (Connection* c : impl_->conns)
      if (auto p = c->weak_from_this().lock()) alive.push_back(std::move(p));
  }
  for (auto& c : alive) asio::post(c->stream.get_executor(), [c] { c->cancel(); });
}

bool Server::wait_for(int64_t timeout_ns) {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, nanoseconds(timeout_ns), [&] {
    return !impl_->accepting && !impl_->flushing && impl_->live == 0;
  });
}

}  // namespace ingestd::plugins::http_source

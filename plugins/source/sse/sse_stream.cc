// The only translation unit of the source that includes Boost.Beast.
#include "sse_stream.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/write.hpp>

#include "shared/net/async_push.h"
#include "shared/net/coroutine_end.h"

namespace ingestd::plugins::sse {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;

constexpr const char* kUserAgent = "ingestd-sse";
// Every step completes with (error_code, value) instead of throwing.
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

// True for "text/event-stream", with any case and parameters ("; charset=utf-8").
bool is_event_stream(std::string_view type) {
  constexpr std::string_view kType = "text/event-stream";
  if (type.size() < kType.size() || !beast::iequals(type.substr(0, kType.size()), kType))
    return false;
  type.remove_prefix(kType.size());
  return type.empty() || type.front() == ';' || type.front() == ' ' || type.front() == '\t';
}

}  // namespace

const char* end_name(End end) {
  switch (end) {
    case End::kConnect:
      return "connect";
    case End::kTimeout:
      return "timeout";
    case End::kStatus:
      return "status";
    case End::kContentType:
      return "content_type";
    case End::kRead:
      return "read";
    case End::kClosed:
      return "closed";
    case End::kStopped:
      return "stopped";
  }
  return "read";
}

struct Loop::Impl : std::enable_shared_from_this<Impl> {
  // How a connection went.
  struct Outcome {
    End end = End::kClosed;
    int status = 0;
    bool connected = false;  // a 200 event stream
    std::string error;
  };

  Impl(asio::io_context& io, Target t, std::function<double()> uniform, Output& o, Listener& l)
      : strand(asio::make_strand(io)),
        target(std::move(t)),
        backoff(target.backoff, std::move(uniform)),
        out(o),
        listener(l),
        timer(strand),
        resolver(strand),
        body(target.read_size) {
    for (const auto& [name, value] : target.headers)
      if (std::none_of(replaced.begin(), replaced.end(),
                       [&](const std::string& r) { return beast::iequals(r, name); }))
        replaced.push_back(name);
  }

  static asio::awaitable<void> loop(std::shared_ptr<Impl> self) {
    int64_t wait_ns = 0;
    while (!self->stopped) {
      self->listener.on_attempt(wait_ns);
      Outcome o = co_await self->connection();
      self->close();
      if (self->stopped || o.end == End::kStopped) break;
      if (std::optional<int64_t> retry = self->listener.on_end(o.end, o.status, o.error))
        self->backoff.set_base_ns(*retry);
      if (o.end == End::kClosed && self->target.stop_at_eof) break;
      // The first failure waits the base, like an end after a good connection; each failure
      // in a row after it doubles the wait.
      if (o.connected) self->backoff.succeeded();
      wait_ns = self->backoff.next_ns();
      if (!o.connected) self->backoff.failed();
      self->timer.expires_after(std::chrono::nanoseconds(wait_ns));
      co_await self->timer.async_wait(kToken);
    }
  }

  asio::awaitable<Outcome> connection() {
    Outcome o;
    const http::Url& url = target.url;
    auto [resolve_ec, endpoints] =
        co_await resolver.async_resolve(url.host, std::to_string(url.port), kToken);
    if (stopped) co_return stop(o);
    if (resolve_ec)
      co_return fail(o, End::kConnect,
                     fmt::format("cannot resolve {}: {}", url.host, resolve_ec.message()));
    stream.emplace(strand);
    stream->expires_after(std::chrono::nanoseconds(target.connect_timeout_ns));
    auto [connect_ec, endpoint] = co_await stream->async_connect(endpoints, kToken);
    if (stopped) co_return stop(o);
    if (connect_ec) co_return fail(o, End::kConnect, "cannot connect to", connect_ec);

    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, url.target, 11};
    req.set(bhttp::field::host, url.host_header);
    req.set(bhttp::field::user_agent, kUserAgent);
    req.set(bhttp::field::accept, "text/event-stream");
    req.set(bhttp::field::cache_control, "no-cache");
    for (const auto& name : replaced) req.erase(name);
    for (const auto& [name, value] : target.headers) req.insert(name, value);
    if (std::string id = listener.last_event_id(); !id.empty()) req.set("Last-Event-ID", id);
    auto [write_ec, written] = co_await bhttp::async_write(*stream, req, kToken);
    if (stopped) co_return stop(o);
    if (write_ec) co_return fail(o, End::kRead, "cannot send the request to", write_ec);

    // Beast reads at most the buffer's free capacity (512 bytes at least) per read: reserve a
    // piece's worth, or a fast stream arrives in 512-byte reads.
    beast::flat_buffer buffer;
    buffer.reserve(target.read_size);
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);  // a stream has no end to limit
    auto [header_ec, header_bytes] =
        co_await bhttp::async_read_header(*stream, buffer, parser, kToken);
    if (stopped) co_return stop(o);
    if (header_ec) co_return fail(o, End::kRead, "no answer from", header_ec);
    const auto& res = parser.get();
    o.status = static_cast<int>(res.result_int());
    if (o.status != 200) {
      std::string reason(res.reason());
      if (reason.empty() && res.result() != bhttp::status::unknown)
        reason = std::string(bhttp::obsolete_reason(res.result()));
      co_return fail(o, End::kStatus,
                     fmt::format("HTTP {}{}{} from {}:{}", o.status, reason.empty() ? "" : " ",
                                 reason, url.host, url.port));
    }
    const std::string_view type = res[bhttp::field::content_type];
    if (!is_event_stream(type))
      co_return fail(o, End::kContentType,
                     fmt::format("{}:{} answered Content-Type '{}', not text/event-stream",
                                 url.host, url.port, type));
    o.connected = true;
    listener.on_connected();

    std::vector<BatchPtr> ready;
    while (!parser.is_done()) {
      auto& piece = parser.get().body();
      piece.data = body.data();
      piece.size = body.size();
      piece.more = true;
      stream->expires_after(std::chrono::nanoseconds(target.read_timeout_ns));
      auto [read_ec, n] = co_await bhttp::async_read_some(*stream, buffer, parser, kToken);
      if (stopped) co_return stop(o);
      if (read_ec == bhttp::error::need_buffer) read_ec = {};  // the piece is full
      const size_t got = body.size() - parser.get().body().size;
      // More is waiting when the parser holds unread bytes or the socket has some.
      beast::error_code ignored;
      const bool more = !read_ec && !parser.is_done() &&
                        (buffer.size() > 0 || stream->socket().available(ignored) > 0);
      if (got > 0 || !more) {
        listener.on_bytes(std::string_view(body.data(), got), more, ready);
        for (BatchPtr& batch : ready) {
          PushResult r = co_await net::async_push(out, batch, timer, [this] { return stopped; });
          if (r != PushResult::kOk) co_return stop(o);  // stopping: the pipeline's or ours
        }
        ready.clear();
      }
      if (read_ec == bhttp::error::end_of_stream) break;  // EOF that the parser took as the end
      if (read_ec) co_return fail(o, End::kRead, "the stream broke from", read_ec);
    }
    o.end = End::kClosed;
    o.error = fmt::format("{}:{} ended the stream", url.host, url.port);
    co_return o;
  }

  Outcome& stop(Outcome& o) {
    o.end = End::kStopped;
    return o;
  }

  Outcome& fail(Outcome& o, End end, std::string error) {
    o.end = end;
    o.error = std::move(error);
    return o;
  }

  Outcome& fail(Outcome& o, End end, std::string_view what, const beast::error_code& ec) {
    if (ec == beast::error::timeout) {
      const int64_t ms =
          (o.connected ? target.read_timeout_ns : target.connect_timeout_ns) / 1'000'000;
      return fail(o, End::kTimeout,
                  fmt::format("{} {}:{}: {} after {} ms", what, target.url.host, target.url.port,
                              o.connected ? "no data" : "timed out", ms));
    }
    return fail(o, end,
                fmt::format("{} {}:{}: {}", what, target.url.host, target.url.port, ec.message()));
  }

  void close() {
    if (!stream) return;
    beast::error_code ignored;
    stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream->close();
    stream.reset();
  }

  // On the strand: ends the loop at its next step and cancels the one in progress.
  void cancel() {
    stopped = true;
    timer.cancel();
    resolver.cancel();
    if (stream) stream->cancel();
  }

  Strand strand;
  Target target;
  Backoff backoff;
  Output& out;
  Listener& listener;
  std::vector<std::string> replaced;  // names in target.headers, each once: they replace defaults
  asio::steady_timer timer;           // the backoff, and the wait while downstream is full
  tcp::resolver resolver;
  std::optional<beast::tcp_stream> stream;  // during a connection
  std::vector<char> body;                   // where the parser puts the body's bytes
  bool stopped = false;                     // on the strand

  net::CoroutineEnd end;  // Loop::wait_for() and error()
};

Loop::Loop(asio::io_context& io, Target target, std::function<double()> uniform, Output& out,
           Listener& listener)
    : impl_(std::make_shared<Impl>(io, std::move(target), std::move(uniform), out, listener)) {}

Loop::~Loop() = default;

void Loop::start() {
  net::spawn_loop(impl_);
}

void Loop::stop() {
  net::cancel_loop(impl_);
}

bool Loop::wait_for(int64_t timeout_ns) {
  return impl_->end.wait_for(timeout_ns);
}

std::string Loop::error() const {
  return impl_->end.error();
}

}  // namespace ingestd::plugins::sse

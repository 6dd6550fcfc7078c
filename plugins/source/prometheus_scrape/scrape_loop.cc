// The only translation unit of the source that includes Boost.Beast.
#include "scrape_loop.h"

#include <algorithm>
#include <chrono>
#include <optional>

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
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "shared/net/async_push.h"
#include "shared/net/coroutine_end.h"
#include "shared/net/gunzip.h"

namespace ingestd::plugins::scrape {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;

constexpr const char* kUserAgent = "ingestd-prometheus-scrape";
constexpr const char* kAccept = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
// Every step completes with (error_code, value) instead of throwing.
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

}  // namespace

const char* failure_name(Failure failure) {
  switch (failure) {
    case Failure::kNone:
      return "none";
    case Failure::kConnect:
      return "connect";
    case Failure::kTimeout:
      return "timeout";
    case Failure::kStatus:
      return "status";
    case Failure::kBodyTooLarge:
      return "body_too_large";
    case Failure::kRead:
      return "read";
  }
  return "none";
}

struct Loop::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, Target t, int64_t interval, const Clock& c, Output& o, Handler h)
      : strand(asio::make_strand(io)),
        target(std::move(t)),
        interval(interval),
        clock(c),
        out(o),
        handler(std::move(h)),
        timer(strand),
        resolver(strand) {
    for (const auto& [name, value] : target.headers)
      if (std::none_of(replaced.begin(), replaced.end(),
                       [&](const std::string& r) { return beast::iequals(r, name); }))
        replaced.push_back(name);
  }

  static asio::awaitable<void> loop(std::shared_ptr<Impl> self) {
    auto next = std::chrono::steady_clock::now();
    const std::chrono::nanoseconds period(self->interval);
    // `stopped` is checked after every co_await: a stop that ran while a completion was on its
    // way found no operation to cancel, and the next one must not begin.
    while (!self->stopped) {
      Outcome outcome = co_await self->scrape();
      if (self->stopped) break;
      if (BatchPtr batch = self->handler(outcome)) {
        PushResult r = co_await net::async_push(self->out, batch, self->timer,
                                                [&self] { return self->stopped; });
        if (r != PushResult::kOk || self->stopped) break;  // stopping: the pipeline's or ours
      }
      const auto now = std::chrono::steady_clock::now();
      do next += period;
      while (next <= now);
      self->timer.expires_at(next);
      co_await self->timer.async_wait(kToken);
    }
  }

  asio::awaitable<Outcome> scrape() {
    Outcome o;
    o.start_ns = clock.now_ns();
    const auto began = std::chrono::steady_clock::now();
    const auto deadline = began + std::chrono::nanoseconds(target.timeout_ns);
    co_await exchange(o, deadline);
    o.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - began)
                        .count();
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->close();
      stream.reset();
    }
    co_return o;
  }

  asio::awaitable<void> exchange(Outcome& o, std::chrono::steady_clock::time_point deadline) {
    const http::Url& url = target.url;
    auto [resolve_ec, endpoints] =
        co_await resolver.async_resolve(url.host, std::to_string(url.port), kToken);
    if (stopped) co_return;
    if (resolve_ec) {
      o.failure = Failure::kConnect;
      o.error = fmt::format("cannot resolve {}: {}", url.host, resolve_ec.message());
      co_return;
    }
    stream.emplace(strand);
    stream->expires_at(deadline);
    auto [connect_ec, endpoint] = co_await stream->async_connect(endpoints, kToken);
    if (stopped) co_return;
    if (connect_ec) co_return fail(o, Failure::kConnect, "cannot connect to", connect_ec);

    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, url.target, 11};
    req.set(bhttp::field::host, url.host_header);
    req.set(bhttp::field::user_agent, kUserAgent);
    req.set(bhttp::field::accept, kAccept);
    if (target.gzip) req.set(bhttp::field::accept_encoding, "gzip");
    for (const auto& name : replaced) req.erase(name);
    for (const auto& [name, value] : target.headers) req.insert(name, value);
    req.keep_alive(false);
    auto [write_ec, written] = co_await bhttp::async_write(*stream, req, kToken);
    if (stopped) co_return;
    if (write_ec) co_return fail(o, Failure::kRead, "cannot send the request to", write_ec);

    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(target.max_body_size);
    auto [header_ec, header_bytes] =
        co_await bhttp::async_read_header(*stream, buffer, parser, kToken);
    if (stopped) co_return;
    // A Content-Length over the limit fails here, with the header read.
    if (header_ec && !(header_ec == bhttp::error::body_limit && parser.is_header_done()))
      co_return fail(o, Failure::kRead, "no answer from", header_ec);
    const auto& res = parser.get();
    o.status = static_cast<int>(res.result_int());
    if (o.status != 200) {
      std::string reason(res.reason());
      if (reason.empty() && res.result() != bhttp::status::unknown)
        reason = std::string(bhttp::obsolete_reason(res.result()));
      o.failure = Failure::kStatus;
      o.error = fmt::format("HTTP {}{}{} from {}:{}", o.status, reason.empty() ? "" : " ", reason,
                            url.host, url.port);
      co_return;
    }
    if (!header_ec) {
      auto [body_ec, body_bytes] = co_await bhttp::async_read(*stream, buffer, parser, kToken);
      if (stopped) co_return;
      header_ec = body_ec;
    }
    if (header_ec == bhttp::error::body_limit) {
      o.failure = Failure::kBodyTooLarge;
      o.error = fmt::format("the answer of {}:{} is larger than max_body_size ({} bytes)", url.host,
                            url.port, target.max_body_size);
      co_return;
    }
    if (header_ec) co_return fail(o, Failure::kRead, "cannot read the answer of", header_ec);
    auto encoding = res[bhttp::field::content_encoding];
    if (encoding.empty() || beast::iequals(encoding, "identity")) {
      o.body = std::move(parser.get().body());
      co_return;
    }
    if (!beast::iequals(encoding, "gzip")) {
      o.failure = Failure::kRead;
      o.error = fmt::format("the answer of {}:{} is in Content-Encoding {}, which is not read",
                            url.host, url.port, std::string_view(encoding));
      co_return;
    }
    switch (gunzip.inflate(parser.get().body(), target.max_body_size, o.body)) {
      case net::Gunzip::Result::kOk:
        break;
      case net::Gunzip::Result::kTooLarge:
        o.body.clear();
        o.failure = Failure::kBodyTooLarge;
        o.error =
            fmt::format("the answer of {}:{} decompresses to more than max_body_size ({} bytes)",
                        url.host, url.port, target.max_body_size);
        break;
      case net::Gunzip::Result::kCorrupt:
      case net::Gunzip::Result::kTruncated:
        o.body.clear();
        o.failure = Failure::kRead;
        o.error =
            fmt::format("the gzip answer of {}:{} is corrupt or truncated", url.host, url.port);
        break;
    }
  }

  void fail(Outcome& o, Failure failure, std::string_view what, const beast::error_code& ec) {
    const bool timed_out = ec == beast::error::timeout;
    o.failure = timed_out ? Failure::kTimeout : failure;
    o.error =
        fmt::format("{} {}:{}: {}", what, target.url.host, target.url.port,
                    timed_out ? fmt::format("timed out after {} ms", target.timeout_ns / 1'000'000)
                              : ec.message());
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
  int64_t interval;
  const Clock& clock;
  Output& out;
  Handler handler;
  std::vector<std::string> replaced;  // names in target.headers, each once: they replace defaults
  asio::steady_timer timer;           // the interval, and the backoff while downstream is full
  tcp::resolver resolver;
  std::optional<beast::tcp_stream> stream;  // during a scrape
  net::Gunzip gunzip;                       // reused from scrape to scrape
  bool stopped = false;                     // on the strand

  net::CoroutineEnd end;  // Loop::wait_for() and error()
};

Loop::Loop(asio::io_context& io, Target target, int64_t interval_ns, const Clock& clock,
           Output& out, Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(target), interval_ns, clock, out,
                                   std::move(handler))) {}

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

}  // namespace ingestd::plugins::scrape

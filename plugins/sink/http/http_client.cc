// The only translation unit of the sink that includes Boost.Beast.
#include "http_client.h"

#include <poll.h>

#include <chrono>
#include <exception>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace ingestd::plugins::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Request = bhttp::request<bhttp::string_body>;

constexpr size_t kKeptBodyBytes = 4096;
constexpr uint64_t kMaxResponseBody = 1 << 20;
constexpr const char* kUserAgent = "ingestd-sink-http";
// Every step of an exchange completes with (error_code, value) instead of throwing.
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

std::string duration_text(std::chrono::nanoseconds d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return ms % 1000 == 0 ? fmt::format("{}s", ms / 1000) : fmt::format("{}ms", ms);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

}  // namespace

struct HttpClient::Impl {
  Impl(Url u, Headers h, int64_t timeout_ns)
      : url(std::move(u)), headers(std::move(h)), timeout(timeout_ns), resolver(ioc) {
    std::set<std::string> seen;
    for (const auto& [name, value] : headers)
      if (seen.insert(lower(name)).second) replaced.push_back(name);
  }

  // Connects when `endpoints` is given, then sends `req` and reads the answer into `out`.
  asio::awaitable<void> exchange(Request& req, const tcp::resolver::results_type* endpoints,
                                 Exchange& out) {
    if (endpoints) {
      auto [ec, endpoint] = co_await stream->async_connect(*endpoints, kToken);
      if (ec) co_return fail(out, "cannot connect to", ec);
      connected = true;
      ++connections;
    }
    auto [write_ec, written] = co_await bhttp::async_write(*stream, req, kToken);
    if (write_ec) co_return fail(out, "cannot send the request to", write_ec);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    auto [header_ec, header_bytes] =
        co_await bhttp::async_read_header(*stream, buffer, parser, kToken);
    if (header_ec) co_return fail(out, "no answer from", header_ec);
    // The status is known now: a body over the limit ends the connection, not the answer.
    auto [body_ec, body_bytes] = co_await bhttp::async_read(*stream, buffer, parser, kToken);
    if (body_ec && body_ec != bhttp::error::body_limit)
      co_return fail(out, "cannot read the answer from", body_ec);
    const auto& res = parser.get();
    out.answered = true;
    out.response.status = static_cast<int>(res.result_int());
    out.response.reason = std::string(res.reason());
    if (out.response.reason.empty() && res.result() != bhttp::status::unknown)
      out.response.reason = std::string(bhttp::obsolete_reason(res.result()));
    out.response.body = res.body().substr(0, kKeptBodyBytes);
    if (auto it = res.find(bhttp::field::retry_after); it != res.end())
      out.response.retry_after = std::string(it->value());
    if (body_ec || !res.keep_alive()) drop();
  }

  void fail(Exchange& out, std::string_view what, const beast::error_code& ec) {
    out.timed_out = ec == beast::error::timeout;
    out.error =
        fmt::format("{} {}:{}: {}", what, url.host, url.port,
                    out.timed_out ? "timed out after " + duration_text(timeout) : ec.message());
    drop();
  }

  // False when there is no connection, or when the idle one is readable: between requests a
  // server sends nothing, so readable means it closed the connection (or broke the protocol).
  bool idle_connection_usable() {
    if (!connected || buffer.size() != 0) return false;
    pollfd p{stream->socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }

  void drop() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->close();
    }
    connected = false;
    buffer.clear();
  }

  Url url;
  Headers headers;
  std::vector<std::string> replaced;  // names in `headers`, each once: they replace the defaults
  std::chrono::nanoseconds timeout;
  asio::io_context ioc{1};
  tcp::resolver resolver;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  bool connected = false;
  uint64_t connections = 0;
};

HttpClient::HttpClient(Url url, Headers headers, int64_t timeout_ns)
    : impl_(std::make_unique<Impl>(std::move(url), std::move(headers), timeout_ns)) {}

HttpClient::~HttpClient() {
  impl_->drop();
}

uint64_t HttpClient::connections() const {
  return impl_->connections;
}

Exchange HttpClient::post(std::string& body, const char* type, bool gzip) {
  Impl& s = *impl_;
  Exchange out;
  const auto deadline = std::chrono::steady_clock::now() + s.timeout;
  std::optional<tcp::resolver::results_type> endpoints;
  if (!s.idle_connection_usable()) {
    s.drop();
    beast::error_code ec;
    endpoints = s.resolver.resolve(s.url.host, std::to_string(s.url.port),
                                   tcp::resolver::numeric_service, ec);
    if (ec) {
      out.error = fmt::format("cannot resolve {}: {}", s.url.host, ec.message());
      return out;
    }
    s.stream.emplace(s.ioc);
  }

  Request req{bhttp::verb::post, s.url.target, 11};
  req.set(bhttp::field::host, s.url.host_header);
  req.set(bhttp::field::user_agent, kUserAgent);
  req.set(bhttp::field::content_type, type);
  if (gzip) req.set(bhttp::field::content_encoding, "gzip");
  for (const auto& name : s.replaced) req.erase(name);
  for (const auto& [name, value] : s.headers) req.insert(name, value);
  req.keep_alive(true);
  req.body() = std::move(body);
  req.prepare_payload();

  s.stream->expires_at(deadline);
  asio::co_spawn(
      s.ioc, s.exchange(req, endpoints ? &*endpoints : nullptr, out), [&](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          out.error =
              fmt::format("HTTP exchange with {}:{} failed: {}", s.url.host, s.url.port, x.what());
        } catch (...) {
          out.error = fmt::format("HTTP exchange with {}:{} failed", s.url.host, s.url.port);
        }
        s.drop();
      });
  s.ioc.restart();
  s.ioc.run();
  // An idle connection must not time out between requests.
  if (s.connected) s.stream->expires_never();
  body = std::move(req.body());
  return out;
}

}  // namespace ingestd::plugins::http

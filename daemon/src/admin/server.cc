// The only translation unit of the daemon that includes Boost.Beast.
#include "admin/server.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "admin/routes.h"

namespace ingestd::admin {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using Stream = beast::basic_stream<tcp, Strand>;
using std::chrono::nanoseconds;

constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxHeader = 8 << 10;
constexpr size_t kMaxBody = 4 << 10;

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, control::DaemonApi& daemon, ServerOptions opts)
      : io(io_context), api(daemon), options(std::move(opts)), acceptor(asio::make_strand(io)) {}

  asio::io_context& io;
  control::DaemonApi& api;
  const ServerOptions options;
  asio::basic_socket_acceptor<tcp, Strand> acceptor;
  asio::thread_pool work{2};  // the answers that call into the daemon

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  bool accepting = false;
  std::unordered_map<Stream*, std::weak_ptr<Stream>> conns;  // to close them at stop

  bool is_stopping() {
    std::lock_guard lock(mu);
    return stopping;
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self);
  // A coroutine, not a lambda, so that its arguments live in its frame.
  static asio::awaitable<Response> answer(std::shared_ptr<Impl> self, Request request) {
    co_return route(self->api, request, self->options.token);
  }
  static asio::awaitable<void> session(std::shared_ptr<Impl> self, std::shared_ptr<Stream> conn);
};

asio::awaitable<void> Server::Impl::accept_loop(std::shared_ptr<Impl> self) {
  for (;;) {
    auto [ec, socket] = co_await self->acceptor.async_accept(asio::make_strand(self->io), kToken);
    {
      std::lock_guard lock(self->mu);
      if (self->stopping) break;
      if (!ec && self->conns.size() >= self->options.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
        continue;
      }
    }
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      // EMFILE and the like: pause, so that the loop does not spin, and go on.
      spdlog::warn("[admin] accept failed: {}", ec.message());
      asio::steady_timer pause(self->acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(kToken);
      continue;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, session(self, std::make_shared<Stream>(std::move(socket))),
                   asio::detached);
  }
  std::lock_guard lock(self->mu);
  self->accepting = false;
  self->cv.notify_all();
}

asio::awaitable<void> Server::Impl::session(std::shared_ptr<Impl> self,
                                            std::shared_ptr<Stream> conn) {
  Stream& stream = *conn;
  {
    std::lock_guard lock(self->mu);
    if (self->stopping) co_return;
    self->conns.emplace(conn.get(), conn);
  }
  beast::flat_buffer buffer(kMaxHeader + kMaxBody);
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(kMaxHeader);
    parser.body_limit(kMaxBody);
    // Idle until the first byte of a request, then the whole request within request_timeout.
    if (buffer.size() == 0) {
      stream.expires_after(nanoseconds(self->options.idle_timeout_ns));
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(1024), kToken);
      if (ec) break;
      buffer.commit(n);
    }
    stream.expires_after(nanoseconds(self->options.request_timeout_ns));
    auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, kToken);
    Response response;
    bool keep_alive = false;
    bool head = false;
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      break;
    } else if (ec == bhttp::error::header_limit || ec == bhttp::error::body_limit) {
      response.status = ec == bhttp::error::header_limit ? 431 : 413;
      response.body = fmt::format("{{\"error\":\"request too large: {}\"}}\n", ec.message());
    } else if (ec) {
      response.status = 400;
      response.body = "{\"error\":\"malformed HTTP request\"}\n";
    } else {
      const auto& req = parser.get();
      keep_alive = req.keep_alive();
      Request request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      head = req.method() == bhttp::verb::head;
      if (auto it = req.find(bhttp::field::accept); it != req.end())
        request.accept = std::string(it->value());
      if (auto it = req.find(bhttp::field::authorization); it != req.end())
        request.authorization = std::string(it->value());
      if (auto it = req.find(bhttp::field::if_none_match); it != req.end())
        request.if_none_match = std::string(it->value());
      // Off the io threads: status, metrics and aggregates may take a while.
      response = co_await asio::co_spawn(self->work, answer(self, std::move(request)),
                                         asio::use_awaitable);
    }
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(response.status), 11};
    res.set(bhttp::field::server, "ingestd");
    res.set(bhttp::field::content_type, response.content_type);
    res.set(bhttp::field::cache_control, "no-store");
    for (const auto& [name, value] : response.headers) res.set(name, value);
    res.keep_alive(keep_alive);
    const size_t length = response.body.size();
    if (!head) res.body() = std::move(response.body);
    // A 304 has no body, and a Content-Length would have to be that of the 200 it stands for.
    if (response.status != 304) res.content_length(length);
    stream.expires_after(nanoseconds(self->options.request_timeout_ns));
    bhttp::response_serializer<bhttp::string_body> sr{res};
    if (head) sr.split(true);
    beast::error_code wec;
    if (head)
      std::tie(wec, std::ignore) = co_await bhttp::async_write_header(stream, sr, kToken);
    else
      std::tie(wec, std::ignore) = co_await bhttp::async_write(stream, sr, kToken);
    // A stop that came while this request was answered found nothing to cancel: the connection
    // ends here rather than wait, idle, for the next request.
    if (wec || !keep_alive || self->is_stopping()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.close();
  std::lock_guard lock(self->mu);
  self->conns.erase(conn.get());
  self->cv.notify_all();
}

std::unique_ptr<Server> Server::start(asio::io_context& io, control::DaemonApi& api,
                                      const ServerOptions& options, std::string& error) {
  auto impl = std::make_shared<Impl>(io, api, options);
  beast::error_code ec;
  std::string host = options.host == "localhost" ? "127.0.0.1" : options.host;
  auto address = asio::ip::make_address(host, ec);
  tcp::endpoint endpoint(address, options.port);
  auto& acceptor = impl->acceptor;
  if (!ec) acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    bool v6 = host.find(':') != std::string::npos;
    error = fmt::format("admin: cannot listen on {}{}{}:{}: {}", v6 ? "[" : "", options.host,
                        v6 ? "]" : "", options.port, ec.message());
    return nullptr;
  }
  impl->accepting = true;
  asio::co_spawn(acceptor.get_executor(), Impl::accept_loop(impl), asio::detached);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  asio::post(impl_->acceptor.get_executor(), [self = impl_] {
    beast::error_code ignored;
    self->acceptor.close(ignored);
  });
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [raw, weak] : impl_->conns)
      if (auto s = weak.lock()) asio::post(s->get_executor(), [s] { s->cancel(); });
  }
  // The io threads end what was cancelled; a handler that never runs (the io_context stopped
  // already) leaves nothing behind but its memory, so waiting is bounded.
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait_for(lock, std::chrono::seconds(5),
                     [&] { return !impl_->accepting && impl_->conns.empty(); });
  lock.unlock();
  impl_->work.join();
}

std::string Server::address() const {
  beast::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  if (ec) return "";
  auto a = endpoint.address();
  return a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), endpoint.port())
                   : fmt::format("{}:{}", a.to_string(), endpoint.port());
}

}  // namespace ingestd::admin

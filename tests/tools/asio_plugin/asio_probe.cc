// A source whose run() does Asio work on ctx.io() and emits one record saying how it went:
// `rounds` rounds of a timer wait, an accept, a connect and a one-byte exchange over loopback.
// The record is "<PROBE_TAG> ok <rounds>", or "<PROBE_TAG> error: <what>".
#include <chrono>
#include <future>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "ingestd/plugin.h"

namespace ingestd::test_plugins {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// One round after another, each step's handler starting the next, all on the io_context. The
// same class name in both probe plugins: only the tag differs.
class Rounds : public std::enable_shared_from_this<Rounds> {
 public:
  Rounds(asio::io_context& io, int64_t rounds)
      : acceptor_(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
        server_(io),
        client_(io),
        timer_(io),
        left_(rounds) {}

  static const char* tag() { return PROBE_TAG; }

  std::future<std::string> start(int64_t rounds) {
    rounds_ = rounds;
    next();
    return result_.get_future();
  }

 private:
  void fail(const char* step, const boost::system::error_code& ec) {
    result_.set_value(std::string(tag()) + " error: " + step + ": " + ec.message());
  }

  void next() {
    if (left_-- == 0) {
      result_.set_value(std::string(tag()) + " ok " + std::to_string(rounds_));
      return;
    }
    server_.close();
    client_.close();
    timer_.expires_after(std::chrono::microseconds(100));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return self->fail("wait", ec);
      self->accept();
    });
  }

  void accept() {
    acceptor_.async_accept(server_, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return self->fail("accept", ec);
      asio::async_read(self->server_, asio::buffer(&self->in_, 1),
                       [self](boost::system::error_code ec, size_t) {
                         if (ec) return self->fail("read", ec);
                         self->next();
                       });
    });
    client_.async_connect(acceptor_.local_endpoint(),
                          [self = shared_from_this()](boost::system::error_code ec) {
                            if (ec) return self->fail("connect", ec);
                            asio::async_write(self->client_, asio::buffer(&self->out_, 1),
                                              [self](boost::system::error_code ec, size_t) {
                                                if (ec) self->fail("write", ec);
                                              });
                          });
  }

  tcp::acceptor acceptor_;
  tcp::socket server_;
  tcp::socket client_;
  asio::steady_timer timer_;
  int64_t left_;
  int64_t rounds_ = 0;
  char in_ = 0;
  char out_ = 'x';
  std::promise<std::string> result_;
};

class AsioProbe final : public Source {
 public:
  AsioProbe(const Options& options, Diagnostics&) : rounds_(options.get_int("rounds", 200)) {}

  void run(Context& ctx, Output& out) override {
    std::string result;
    try {
      auto rounds = std::make_shared<Rounds>(ctx.io(), rounds_);
      result = rounds->start(rounds_).get();
    } catch (const std::exception& e) {
      result = std::string(Rounds::tag()) + " error: " + e.what();
    }
    auto batch = std::make_unique<Batch>();
    batch->ingest_time_ns = ctx.clock().now_ns();
    batch->add(batch->copy(result), batch->ingest_time_ns);
    out.push(std::move(batch));
  }

 private:
  int64_t rounds_;
};

inline constexpr OptionSpec kAsioProbeOptions[] = {
    {.name = "rounds", .type = OptionType::kInt, .default_value = "200", .doc = "Rounds to run."},
};

}  // namespace ingestd::test_plugins

INGESTD_PLUGIN("test-asio-probe-" PROBE_TAG, "1.0.0",
               ingestd::describe<ingestd::test_plugins::AsioProbe>(
                   ingestd::Kind::kSource, PROBE_TYPE, "Runs Asio work on the host's io_context.",
                   ingestd::test_plugins::kAsioProbeOptions))

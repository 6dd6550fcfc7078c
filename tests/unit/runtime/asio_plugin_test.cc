// Plugins built with ingestd_add_plugin() run Boost.Asio objects on an io_context that the host
// owns and runs on its own threads, as the daemon does with Context::io(). Without one shared
// Asio state (cmake/IngestdPlugin.cmake) the plugin's reactor code finds no scheduler on the
// host's threads and the process dies with SIGSEGV within a few rounds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "config/config.h"
#include "fake_context.h"
#include "runtime/plugin_loader.h"

namespace ingestd::runtime {
namespace {

// The host's io_context, run by two threads of the test binary (its own Asio code), as the
// daemon's io pool runs it.
class IoPool {
 public:
  IoPool() {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io.run(); });
  }
  ~IoPool() {
    guard_.reset();
    for (auto& t : threads_) t.join();
  }
  boost::asio::io_context io;

 private:
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      io.get_executor()};
  std::vector<std::thread> threads_;
};

class IoContext : public testing::FakeContext {
 public:
  explicit IoContext(boost::asio::io_context& io) : io_(io) {}
  boost::asio::io_context& io() override { return io_; }

 private:
  boost::asio::io_context& io_;
};

// Runs source `type` of the probe plugins once and returns the record it emitted.
std::string run_probe(const PluginCatalog& catalog, IoPool& pool, const std::string& type) {
  const ComponentDescriptor* d = catalog.find(Kind::kSource, type);
  if (!d) return "no " + type;
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(*d, "rounds: 300", errors);
  if (!options) return "bad options";
  testing::CollectingDiagnostics diag;
  std::unique_ptr<Component> c(d->create(*options, diag));
  auto* source = dynamic_cast<Source*>(c.get());
  if (!source) return "not a source";
  IoContext ctx(pool.io);
  testing::CollectingOutput out;
  source->run(ctx, out);
  if (out.batches.size() != 1 || out.batches[0]->size() != 1) return "no record";
  return std::string(out.batches[0]->events()[0].raw);
}

TEST(AsioPlugin, TimersAndSocketsOfPluginsRunOnTheHostsIoContext) {
  PluginCatalog catalog;
  std::vector<std::string> problems;
  catalog.scan({std::string(INGESTD_TEST_PLUGIN_DIR) + "/asio"}, problems);
  EXPECT_THAT(problems, ::testing::IsEmpty());
  IoPool pool;
  // Each plugin keeps its own internals (the same class name, another tag); both share the
  // host's scheduler, reactor and call stack.
  EXPECT_EQ(run_probe(catalog, pool, "asio_probe_a"), "a ok 300");
  EXPECT_EQ(run_probe(catalog, pool, "asio_probe_b"), "b ok 300");
  EXPECT_EQ(run_probe(catalog, pool, "asio_probe_a"), "a ok 300");
}

}  // namespace
}  // namespace ingestd::runtime

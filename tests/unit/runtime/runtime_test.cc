#include "runtime/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "fake_context.h"
#include "ingestd/plugin.h"
#include "runtime/system_clock.h"

namespace ingestd::runtime {
namespace {

constexpr int64_t kWait = 10'000'000'000;  // a generous deadline for conditions, never a sleep

// Emits `count` events (or forever when count is 0) in batches of `batch`, each batch carrying an
// ack that records whether it was delivered.
struct Shared {
  std::atomic<int> acks_ok{0};
  std::atomic<int> acks_failed{0};
  std::mutex mu;
  std::multiset<int64_t> written[2];
  std::atomic<bool> sink_fails{false};
};
Shared* g_shared = nullptr;

class CountingSource : public Source {
 public:
  CountingSource(const Options& o, Diagnostics&)
      : count_(o.get_int("count")), batch_(o.get_int("batch")) {}
  void run(Context& ctx, Output& out) override {
    int64_t next = 0;
    while (!ctx.stopping() && (count_ == 0 || next < count_)) {
      auto b = std::make_unique<Batch>();
      for (int64_t i = 0; i < batch_ && (count_ == 0 || next < count_); ++i) b->add({}, next++);
      b->acks.push_back(std::make_shared<AckState>(
          [](bool ok) { (ok ? g_shared->acks_ok : g_shared->acks_failed).fetch_add(1); }));
      if (!out.push(std::move(b))) break;
    }
  }

 private:
  int64_t count_, batch_;
};

class KeepEvenParser : public Parser {
 public:
  KeepEvenParser(const Options&, Diagnostics&) {}
  void parse(Context&, Batch& b) override {
    b.retain([](const Event& e) { return e.time_ns % 2 == 0; });
  }
};

class RecordingSink : public Sink {
 public:
  RecordingSink(const Options& o, Diagnostics&) : slot_(o.get_int("slot")) {}
  SinkResult write(Context&, const Batch& b) override {
    if (g_shared->sink_fails) return SinkResult::retryable("down");
    std::lock_guard lock(g_shared->mu);
    for (const Event& e : b.events()) g_shared->written[slot_].insert(e.time_ns);
    return SinkResult::ok();
  }

 private:
  int slot_;
};

class SumAggregator : public Aggregator {
 public:
  SumAggregator(const Options&, Diagnostics&) {}
  void consume(Context&, Batch& b) override {
    for (const Event& e : b.events()) sum_ += e.time_ns;
    for (auto& a : b.acks) acks_.push_back(a);
  }
  void advance(Context&, Output&, int64_t) override {}
  void flush(Context&, Output& out) override {
    auto b = std::make_unique<Batch>();
    b->add({}, sum_);
    b->acks = std::move(acks_);
    out.push(std::move(b));
  }

 private:
  int64_t sum_ = 0;
  std::vector<Ack> acks_;
};

constexpr OptionSpec kNoOptions[] = {{.name = "unused", .type = OptionType::kInt}};
constexpr ComponentDescriptor kSource =
    describe<CountingSource>(Kind::kSource, "counting", "", kNoOptions);
constexpr ComponentDescriptor kParser =
    describe<KeepEvenParser>(Kind::kParser, "even", "", kNoOptions);
constexpr ComponentDescriptor kSink =
    describe<RecordingSink>(Kind::kSink, "recording", "", kNoOptions);
constexpr ComponentDescriptor kAgg =
    describe<SumAggregator>(Kind::kAggregator, "sum", "", kNoOptions);

Options ints(std::initializer_list<std::pair<const char*, int64_t>> values) {
  Options o;
  for (auto [k, v] : values) {
    OptionValue x;
    x.type = OptionType::kInt;
    x.i = v;
    o.entries.emplace_back(k, x);
  }
  return o;
}

config::ComponentConfig component(const char* name, const ComponentDescriptor& d,
                                  std::vector<std::string> inputs, Options options = {}) {
  config::ComponentConfig c;
  c.name = name;
  c.kind = d.kind;
  c.type = d.type;
  c.descriptor = &d;
  c.inputs = std::move(inputs);
  c.options = std::move(options);
  c.queue.max_batches = 4;
  return c;
}

struct RuntimeTest : ::testing::Test {
  void SetUp() override { g_shared = &shared; }
  void TearDown() override { g_shared = nullptr; }

  // Builds and starts; the caller waits.
  void start() {
    std::vector<config::Error> errors;
    graph = Graph::build(pipeline, metrics, errors);
    ASSERT_TRUE(graph) << (errors.empty() ? "" : errors[0].message);
    rt = std::make_unique<Runtime>(pipeline, *graph, metrics, clock);
    ASSERT_TRUE(rt->start());
  }
  uint64_t counter(const std::string& name) { return metrics.counter(name).value(); }

  Shared shared;
  config::Pipeline pipeline;
  Metrics metrics;
  SystemClock clock;
  std::unique_ptr<Graph> graph;
  std::unique_ptr<Runtime> rt;
};

TEST_F(RuntimeTest, BatchJobDrainsEverythingAndFinishesByItself) {
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 10000}, {"batch", 100}})));
  pipeline.components.push_back(component("even", kParser, {"src"}));
  pipeline.components.back().workers = 3;
  pipeline.components.push_back(component("out", kSink, {"even"}, ints({{"slot", 0}})));
  start();
  ASSERT_TRUE(rt->wait_for(kWait));
  std::multiset<int64_t> expected;
  for (int64_t i = 0; i < 10000; i += 2) expected.insert(i);
  EXPECT_EQ(shared.written[0], expected);
  EXPECT_EQ(counter("src.events_out"), 10000u);
  EXPECT_EQ(counter("even.events_in"), 10000u);
  EXPECT_EQ(counter("even.events_out"), 5000u);
  EXPECT_EQ(counter("out.events_out"), 5000u);
  rt.reset();
  EXPECT_EQ(shared.acks_ok, 100);
  EXPECT_EQ(shared.acks_failed, 0);
}

TEST_F(RuntimeTest, FanOutGivesEverySinkEveryEventAndAcksAfterBoth) {
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 3000}, {"batch", 64}})));
  pipeline.components.push_back(component("a", kSink, {"src"}, ints({{"slot", 0}})));
  pipeline.components.push_back(component("b", kSink, {"src"}, ints({{"slot", 1}})));
  start();
  ASSERT_TRUE(rt->wait_for(kWait));
  rt.reset();
  EXPECT_EQ(shared.written[0].size(), 3000u);
  EXPECT_EQ(shared.written[0], shared.written[1]);
  EXPECT_EQ(*shared.written[1].rbegin(), 2999);
  EXPECT_EQ(shared.acks_ok, (3000 + 63) / 64);
}

TEST_F(RuntimeTest, StopDrainsAndFlushesAggregatesSoNothingReadIsLost) {
  pipeline.components.push_back(component("src", kSource, {}, ints({{"count", 0}, {"batch", 10}})));
  pipeline.components.push_back(component("sum", kAgg, {"src"}));
  pipeline.components.push_back(component("out", kSink, {"sum"}, ints({{"slot", 0}})));
  start();
  // Let data flow, then stop: every event the source emitted must be in the sum.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (counter("sum.events_in") < 1000 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));
  uint64_t n = counter("src.events_out");
  ASSERT_GE(n, 1000u);
  EXPECT_EQ(counter("sum.events_in"), n);
  ASSERT_EQ(shared.written[0].size(), 1u);
  EXPECT_EQ(*shared.written[0].begin(), static_cast<int64_t>(n * (n - 1) / 2));
  rt.reset();
  EXPECT_EQ(shared.acks_failed, 0);
  EXPECT_EQ(static_cast<uint64_t>(shared.acks_ok), n / 10);
}

TEST_F(RuntimeTest, AbandonEndsAStuckSinkAndCountsWhatItDiscarded) {
  shared.sink_fails = true;
  pipeline.components.push_back(component("src", kSource, {}, ints({{"count", 0}, {"batch", 10}})));
  pipeline.components.push_back(component("out", kSink, {"src"}, ints({{"slot", 0}})));
  start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (counter("out.retries") < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  rt->request_stop();
  EXPECT_FALSE(rt->wait_for(200'000'000));  // the sink keeps retrying: stop alone cannot end it
  rt->abandon();
  ASSERT_TRUE(rt->wait_for(kWait));
  EXPECT_EQ(counter("out.events_out"), 0u);
  // Everything the source emitted was discarded, and counted, at the queue or in the sink.
  EXPECT_EQ(counter("out.shutdown_dropped"), counter("src.events_out"));
  rt.reset();
  EXPECT_EQ(shared.acks_ok, 0);
  EXPECT_EQ(static_cast<uint64_t>(shared.acks_failed), counter("src.events_out") / 10);
}

TEST_F(RuntimeTest, FanInEndsOnlyWhenEveryInputHasEnded) {
  pipeline.components.push_back(component("a", kSource, {}, ints({{"count", 500}, {"batch", 7}})));
  pipeline.components.push_back(component("b", kSource, {}, ints({{"count", 900}, {"batch", 11}})));
  pipeline.components.push_back(component("sum", kAgg, {"a", "b"}));
  pipeline.components.push_back(component("out", kSink, {"sum"}, ints({{"slot", 0}})));
  start();
  ASSERT_TRUE(rt->wait_for(kWait));
  // One flush, after both sources: the sum of 0..499 and of 0..899.
  ASSERT_EQ(shared.written[0].size(), 1u);
  EXPECT_EQ(*shared.written[0].begin(), 499 * 500 / 2 + 899 * 900 / 2);
  EXPECT_EQ(counter("sum.events_in"), 1400u);
}

TEST_F(RuntimeTest, NodesComeAfterTheirInputsWhateverTheFileOrder) {
  // Parsers chained against the order they are written in.
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 10}, {"batch", 10}})));
  pipeline.components.push_back(component("third", kParser, {"second"}));
  pipeline.components.push_back(component("second", kParser, {"first"}));
  pipeline.components.push_back(component("first", kParser, {"src"}));
  pipeline.components.push_back(component("out", kSink, {"third", "first"}, ints({{"slot", 0}})));
  std::vector<config::Error> errors;
  auto g = Graph::build(pipeline, metrics, errors);
  ASSERT_TRUE(g);
  std::vector<std::string> order;
  for (const auto& n : g->nodes()) order.push_back(n->config->name);
  auto pos = [&](const std::string& name) {
    return std::find(order.begin(), order.end(), name) - order.begin();
  };
  for (const auto& c : pipeline.components)
    for (const auto& in : c.inputs) EXPECT_LT(pos(in), pos(c.name)) << in << " -> " << c.name;
  // Edges: first feeds second and out; out has two producers.
  const Node& first = *g->nodes()[pos("first")];
  std::vector<std::string> feeds;
  for (const Node* n : first.outputs) feeds.push_back(n->config->name);
  EXPECT_EQ(feeds, (std::vector<std::string>{"second", "out"}));
}

TEST_F(RuntimeTest, FactoryErrorsBecomeConfigErrorsAtTheOptionPosition) {
  struct Failing : Source {
    Failing(const Options&, Diagnostics& d) { d.error("window.size", "too small"); }
    void run(Context&, Output&) override {}
  };
  static constexpr ComponentDescriptor kFailing =
      describe<Failing>(Kind::kSource, "failing", "", kNoOptions);
  auto c = component("bad", kFailing, {});
  c.pos = {"p.yaml", 3, 3};
  c.option_positions["window"] = {"p.yaml", 4, 5};
  pipeline.components.push_back(c);
  std::vector<config::Error> errors;
  EXPECT_EQ(Graph::build(pipeline, metrics, errors), nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].pos.line, 4);
  EXPECT_EQ(errors[0].pos.column, 5);
  EXPECT_EQ(errors[0].message, "sources.bad (failing): window.size: too small");
}

}  // namespace
}  // namespace ingestd::runtime

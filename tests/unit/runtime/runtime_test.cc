#include "runtime/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "fake_context.h"
#include "ingestd/plugin.h"
#include "runtime/system_clock.h"

namespace ingestd::runtime {
namespace {

constexpr int64_t kWait = 10'000'000'000;  // a generous deadline for conditions, never a sleep

// The system clock, which a test can move forward at once: the runtime's judgements over long
// spans of time are then tested without waiting them out.
class SteppedClock final : public Clock {
 public:
  int64_t now_ns() const override { return real_.now_ns() + offset_.load(); }
  int64_t monotonic_ns() const override { return real_.monotonic_ns() + offset_.load(); }
  void step(int64_t ns) { offset_ += ns; }

 private:
  SystemClock real_;
  std::atomic<int64_t> offset_{0};
};

// Emits `count` events (or forever when count is 0) in batches of `batch`, each batch carrying an
// ack that records whether it was delivered.
struct Shared {
  std::atomic<int> acks_ok{0};
  std::atomic<int> acks_failed{0};
  std::mutex mu;
  std::multiset<int64_t> written[2];
  std::vector<int64_t> order[2];  // the events written, in the order they were written
  std::atomic<bool> sink_fails{false};
  // A sink made with `gated: 1` holds every write until the gate opens.
  std::condition_variable gate_cv;
  bool gate_open = false;  // under mu
  void open_gate() {
    {
      std::lock_guard lock(mu);
      gate_open = true;
    }
    gate_cv.notify_all();
  }
};
Shared* g_shared = nullptr;

class CountingSource : public Source {
 public:
  CountingSource(const Options& o, Diagnostics&)
      : count_(o.get_int("count")), batch_(o.get_int("batch")), linger_(o.get_int("linger") != 0) {}
  void run(Context& ctx, Output& out) override {
    int64_t next = 0;
    while (!ctx.stopping() && (count_ == 0 || next < count_)) {
      auto b = std::make_unique<Batch>();
      for (int64_t i = 0; i < batch_ && (count_ == 0 || next < count_); ++i) b->add({}, next++);
      b->acks.push_back(AckRef::make(
          [](bool ok) { (ok ? g_shared->acks_ok : g_shared->acks_failed).fetch_add(1); }));
      if (!out.push(std::move(b))) break;
    }
    if (linger_)  // stays until stopped, so that its input does not end
      while (!ctx.wait_for_stop(kWait)) {
      }
  }

 private:
  int64_t count_, batch_;
  bool linger_;
};

class KeepEvenParser : public Parser {
 public:
  KeepEvenParser(const Options&, Diagnostics&) {}
  void parse(Context&, Batch& b) override {
    b.retain([](const Event& e) { return e.time_ns % 2 == 0; });
  }
};

// Parses the batch starting at event 0 last: it waits (up to a deadline) until another worker has
// parsed a later batch, so the workers finish out of order.
class FirstLastParser : public Parser {
 public:
  FirstLastParser(const Options&, Diagnostics&) {}
  void parse(Context&, Batch& b) override {
    static std::mutex mu;
    static std::condition_variable cv;
    static bool later_done = false;
    std::unique_lock lock(mu);
    if (b.events().front().time_ns == 0) {
      cv.wait_for(lock, std::chrono::seconds(10), [] { return later_done; });
    } else {
      later_done = true;
      cv.notify_all();
    }
  }
};

class RecordingSink : public Sink {
 public:
  RecordingSink(const Options& o, Diagnostics&)
      : slot_(o.get_int("slot")),
        fail_start_(o.get_int("fail_start") != 0),
        gated_(o.get_int("gated") != 0),
        refuses_(o.get_int("refuses") != 0),
        gauge_(o.get_int("gauge")) {}
  // `gauge`: 1 reports test_writes_pending{slot} (its slot + 10), 2 asks for a bad family name.
  bool start(Context& ctx) override {
    if (gauge_ == 1)
      ctx.gauges("test_writes_pending", "Writes a test sink has pending.",
                 [slot = slot_](std::vector<GaugeSample>& out) {
                   out.push_back({{{"slot", std::to_string(slot)}}, slot + 10.0});
                 });
    if (gauge_ == 2) ctx.gauges("Bad-Name", "", [](std::vector<GaugeSample>&) {});
    return !fail_start_;
  }
  SinkResult write(Context&, const Batch& b) override {
    if (g_shared->sink_fails) return SinkResult::retryable("down");
    if (refuses_) return SinkResult::permanent("refused");
    std::unique_lock lock(g_shared->mu);
    if (gated_) g_shared->gate_cv.wait(lock, [] { return g_shared->gate_open; });
    for (const Event& e : b.events()) {
      g_shared->written[slot_].insert(e.time_ns);
      g_shared->order[slot_].push_back(e.time_ns);
    }
    return SinkResult::ok();
  }

 private:
  int slot_;
  bool fail_start_;
  bool gated_;
  bool refuses_;
  int64_t gauge_;
};

class SumAggregator : public Aggregator {
 public:
  SumAggregator(const Options&, Diagnostics&) {}
  void consume(Context&, Batch& b) override {
    for (const Event& e : b.events()) sum_ += e.time_ns;
    for (auto& a : b.acks) acks_.push_back(std::move(a));
    b.acks.clear();
  }
  void advance(Context&, Output&, int64_t) override {}
  bool inspect(Context&, const InspectQuery& query, Batch& out) override {
    if (query.max_rows > 0) out.add({}, sum_);
    return true;
  }
  void flush(Context&, Output& out) override {
    auto b = std::make_unique<Batch>();
    b->add({}, sum_);
    b->acks = std::move(acks_);
    out.push(std::move(b));
  }

 private:
  int64_t sum_ = 0;
  std::vector<AckRef> acks_;
};

constexpr OptionSpec kNoOptions[] = {{.name = "unused", .type = OptionType::kInt}};
constexpr ComponentDescriptor kSource =
    describe<CountingSource>(Kind::kSource, "counting", "", kNoOptions);
constexpr ComponentDescriptor kParser =
    describe<KeepEvenParser>(Kind::kParser, "even", "", kNoOptions);
constexpr ComponentDescriptor kFirstLast =
    describe<FirstLastParser>(Kind::kParser, "first_last", "", kNoOptions);
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
  c.queue.max_batches = 4;
  c.retry.initial_ns = 1'000'000;  // the tests' sinks retry within milliseconds
  c.retry.max_ns = 10'000'000;
  c.breaker.open_for_ns = 10'000'000;
  c.spool.enabled = false;  // the tests that want one turn it on, with a data_dir of their own
  c.fingerprint = d.type;
  for (const auto& [key, value] : options.entries)
    c.fingerprint += fmt::format(";{}={}", key, value.i);
  c.options = std::move(options);
  return c;
}

std::string no_plugin(const config::ComponentConfig&) {
  return "test";
}

struct RuntimeTest : ::testing::Test {
  void SetUp() override { g_shared = &shared; }
  void TearDown() override {
    rt.reset();
    g_shared = nullptr;
    if (!data_dir.empty()) std::filesystem::remove_all(data_dir);
  }

  // Builds and starts; the caller waits.
  void start() {
    std::vector<config::Error> errors;
    auto components = Components::build(pipeline, metrics, errors);
    ASSERT_TRUE(components) << (errors.empty() ? "" : errors[0].message);
    model = graph::Model::from(pipeline, no_plugin);
    rt = std::make_unique<Runtime>(metrics, clock);
    ASSERT_TRUE(rt->start(generation, model, std::move(components)));
  }
  // Applies `next` to the running pipeline; returns what apply() returned.
  bool reload(std::shared_ptr<Generation> next, graph::Diff* diff_out = nullptr) {
    std::vector<config::Error> errors;
    auto components = Components::build(next->pipeline, metrics, errors);
    EXPECT_TRUE(components);
    graph::Model next_model = graph::Model::from(next->pipeline, no_plugin);
    graph::Diff diff = graph::diff(model, next_model);
    if (diff_out) *diff_out = diff;
    std::string error;
    bool ok = rt->apply(next, next_model, diff, std::move(components), error);
    if (ok) model = next_model;
    return ok;
  }
  // Waits until `name` reaches `n`.
  bool wait_counter(const std::string& name, uint64_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(kWait);
    while (counter(name) < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    return counter(name) >= n;
  }
  uint64_t counter(const std::string& name) { return metrics.counter(name).value(); }
  // src (10000 events in batches of 100) -> even (3 workers) -> out.
  void source_parser_sink() {
    pipeline.components.push_back(
        component("src", kSource, {}, ints({{"count", 10000}, {"batch", 100}})));
    pipeline.components.push_back(component("even", kParser, {"src"}));
    pipeline.components.back().workers = 3;
    pipeline.components.push_back(component("out", kSink, {"even"}, ints({{"slot", 0}})));
  }
  // A fresh data_dir for the pipeline, removed by TearDown().
  void use_data_dir() {
    char dir[] = "/tmp/ingestd-runtime-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    data_dir = pipeline.data_dir = dir;
  }
  // A sink "out" reading `input` that fails until shared.sink_fails is cleared, with a spool in a
  // fresh data_dir (removed by TearDown()) that replays fast once its breaker closes.
  void failing_sink_with_spool(const char* input) {
    shared.sink_fails = true;
    use_data_dir();
    pipeline.components.push_back(component("out", kSink, {input}, ints({{"slot", 0}})));
    config::ComponentConfig& out = pipeline.components.back();
    out.spool.enabled = true;
    out.spool.replay_rate = 1'000'000;
    out.breaker.failures = 2;
  }

  Shared shared;
  std::shared_ptr<Generation> generation = std::make_shared<Generation>();
  config::Pipeline& pipeline = generation->pipeline;
  Metrics metrics;
  SteppedClock clock;
  graph::Model model;
  std::unique_ptr<Runtime> rt;
  std::string data_dir;
};

TEST_F(RuntimeTest, BatchJobDrainsEverythingAndFinishesByItself) {
  source_parser_sink();
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

// The series only the admin server exports: batches and bytes per edge, one latency sample per
// plugin call, and the gauges collect() reads from the running stages.
TEST_F(RuntimeTest, BatchesBytesAndLatencyAreCountedPerBatch) {
  source_parser_sink();
  start();
  ASSERT_TRUE(rt->wait_for(kWait));
  auto value = [&](const char* family, const char* component) {
    return metrics.counter(family, {{"component", component}}).value();
  };
  EXPECT_EQ(value("ingestd_component_batches_out", "src"), 100u);
  EXPECT_EQ(value("ingestd_component_batches_in", "even"), 100u);
  EXPECT_EQ(value("ingestd_component_batches_out", "even"), 100u);
  EXPECT_EQ(value("ingestd_component_batches_in", "out"), 100u);
  EXPECT_EQ(value("ingestd_component_batches_out", "out"), 100u);
  EXPECT_GT(value("ingestd_component_bytes_out", "src"), 0u);
  EXPECT_EQ(value("ingestd_component_bytes_in", "even"),
            value("ingestd_component_bytes_out", "src"));
  EXPECT_EQ(value("ingestd_component_bytes_in", "out"),
            value("ingestd_component_bytes_out", "even"));
  for (const char* c : {"even", "out"}) {
    auto h = metrics.histogram("ingestd_component_batch_duration_seconds", {{"component", c}})
                 .snapshot();
    uint64_t n = 0;
    for (uint64_t x : h.counts) n += x;
    EXPECT_EQ(n, 100u) << c;  // one parse (or write) per batch
  }
  std::vector<Family> gauges;
  rt->collect(gauges);
  auto family = [&](const char* name) -> const Family& {
    for (const auto& f : gauges)
      if (f.name == name) return f;
    ADD_FAILURE() << "no family " << name;
    return gauges.front();
  };
  EXPECT_EQ(family("ingestd_component_info").samples.size(), 3u);
  const Family& bounds = family("ingestd_queue_max_batches");
  ASSERT_EQ(bounds.samples.size(), 2u);  // the consumers' queues: even and out
  EXPECT_EQ(bounds.samples[0].labels, (Labels{{"component", "even"}}));
  EXPECT_EQ(bounds.samples[0].value, static_cast<double>(pipeline.components[1].queue.max_batches));
  const Family& breaker = family("ingestd_sink_breaker_state");
  ASSERT_EQ(breaker.samples.size(), 3u);
  EXPECT_EQ(breaker.samples[0].labels, (Labels{{"sink", "out"}, {"state", "closed"}}));
  EXPECT_EQ(breaker.samples[0].value, 1);
  EXPECT_EQ(breaker.samples[1].value + breaker.samples[2].value, 0);
}

// A parser's workers may finish out of order; the core hands their batches on in the order they
// were taken.
TEST_F(RuntimeTest, ParserWorkersHandBatchesOnInTheOrderTheyCame) {
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 2000}, {"batch", 10}})));
  pipeline.components.push_back(component("p", kFirstLast, {"src"}));
  pipeline.components.back().workers = 4;
  pipeline.components.push_back(component("out", kSink, {"p"}, ints({{"slot", 0}})));
  start();
  ASSERT_TRUE(rt->wait_for(kWait));
  rt.reset();
  std::vector<int64_t> expected(2000);
  for (int64_t i = 0; i < 2000; ++i) expected[static_cast<size_t>(i)] = i;
  EXPECT_EQ(shared.order[0], expected);
  EXPECT_EQ(shared.acks_ok, 200);
}

// Context::gauges(): each component's samples carry its name, families of one name are exported
// once, and a bad name fails the component's start.
TEST_F(RuntimeTest, GaugesThatComponentsReportAreExportedUnderTheirComponent) {
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 10}, {"batch", 5}, {"linger", 1}})));
  pipeline.components.push_back(component("a", kSink, {"src"}, ints({{"slot", 0}, {"gauge", 1}})));
  pipeline.components.push_back(component("b", kSink, {"src"}, ints({{"slot", 1}, {"gauge", 1}})));
  start();
  std::vector<Family> families;
  rt->collect(families);
  std::vector<const Family*> mine;
  for (const auto& f : families)
    if (f.name == "ingestd_test_writes_pending") mine.push_back(&f);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0]->type, MetricType::kGauge);
  EXPECT_EQ(mine[0]->help, "Writes a test sink has pending.");
  ASSERT_EQ(mine[0]->samples.size(), 2u);
  EXPECT_EQ(mine[0]->samples[0].labels, (Labels{{"component", "a"}, {"slot", "0"}}));
  EXPECT_EQ(mine[0]->samples[0].value, 10);
  EXPECT_EQ(mine[0]->samples[1].labels, (Labels{{"component", "b"}, {"slot", "1"}}));
  EXPECT_EQ(mine[0]->samples[1].value, 11);
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));
  rt.reset();

  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  pipeline.components[2] = component("b", kSink, {"src"}, ints({{"slot", 1}, {"gauge", 2}}));
  std::vector<config::Error> errors;
  auto components = Components::build(pipeline, metrics, errors);
  ASSERT_TRUE(components);
  rt = std::make_unique<Runtime>(metrics, clock);
  EXPECT_FALSE(
      rt->start(generation, graph::Model::from(pipeline, no_plugin), std::move(components)));
  rt.reset();
  spdlog::set_default_logger(previous);
  EXPECT_NE(captured.str().find("start failed: gauge family \"Bad-Name\" is not"),
            std::string::npos)
      << captured.str();
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
  EXPECT_EQ(Components::build(pipeline, metrics, errors), nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].pos.line, 4);
  EXPECT_EQ(errors[0].pos.column, 5);
  EXPECT_EQ(errors[0].message, "sources.bad (failing): window.size: too small");
}

// The sequence numbers 0..n-1, each once.
std::multiset<int64_t> sequence(uint64_t n) {
  std::multiset<int64_t> out;
  for (uint64_t i = 0; i < n; ++i) out.insert(static_cast<int64_t>(i));
  return out;
}

TEST_F(RuntimeTest, ReloadKeepsAnUnchangedSourceRunningAndAddsASink) {
  pipeline.components.push_back(component("src", kSource, {}, ints({{"count", 0}, {"batch", 10}})));
  pipeline.components.push_back(component("a", kSink, {"src"}, ints({{"slot", 0}})));
  start();
  ASSERT_TRUE(wait_counter("a.events_out", 1000));

  auto next = std::make_shared<Generation>();
  next->pipeline.components = pipeline.components;
  next->pipeline.components.push_back(component("b", kSink, {"src"}, ints({{"slot", 1}})));
  graph::Diff diff;
  ASSERT_TRUE(reload(next, &diff));
  EXPECT_EQ(diff.kept, (std::vector<std::string>{"src", "a"}));
  EXPECT_EQ(diff.added, std::vector<std::string>{"b"});
  EXPECT_EQ(diff.rewired, std::vector<std::string>{"src"});
  ASSERT_TRUE(wait_counter("b.events_out", 1000));
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));

  // The source went on from where it was: sink a has every number once, b a tail of them.
  uint64_t n = counter("src.events_out");
  EXPECT_EQ(shared.written[0], sequence(n));
  ASSERT_FALSE(shared.written[1].empty());
  int64_t first_b = *shared.written[1].begin();
  EXPECT_GT(first_b, 0);
  EXPECT_EQ(shared.written[1].size(), n - static_cast<uint64_t>(first_b));
  EXPECT_EQ(*shared.written[1].rbegin(), static_cast<int64_t>(n) - 1);
  rt.reset();
  EXPECT_EQ(static_cast<uint64_t>(shared.acks_ok), n / 10);
  EXPECT_EQ(shared.acks_failed, 0);
}

TEST_F(RuntimeTest, ReloadReplacingAnAggregateFlushesItsStateFirst) {
  pipeline.components.push_back(component("src", kSource, {}, ints({{"count", 0}, {"batch", 10}})));
  pipeline.components.push_back(component("sum", kAgg, {"src"}));
  pipeline.components.push_back(component("out", kSink, {"sum"}, ints({{"slot", 0}})));
  start();
  ASSERT_TRUE(wait_counter("sum.events_in", 1000));

  auto next = std::make_shared<Generation>();
  next->pipeline.components = pipeline.components;
  next->pipeline.components[1] = component("sum", kAgg, {"src"}, ints({{"version", 2}}));
  graph::Diff diff;
  ASSERT_TRUE(reload(next, &diff));
  EXPECT_EQ(diff.replaced, std::vector<std::string>{"sum"});
  // The old aggregate's sum was emitted by the reload.
  ASSERT_TRUE(wait_counter("out.events_out", 1));
  uint64_t before_stop = counter("src.events_out");
  ASSERT_TRUE(wait_counter("sum.events_in", before_stop + 1000));
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));

  // Two sums (the old one's and the new one's) that add up to the sum of everything emitted.
  uint64_t n = counter("src.events_out");
  ASSERT_EQ(shared.written[0].size(), 2u);
  int64_t total = 0;
  for (int64_t v : shared.written[0]) total += v;
  EXPECT_EQ(total, static_cast<int64_t>(n * (n - 1) / 2));
  EXPECT_EQ(counter("sum.events_in"), n);
  rt.reset();
  EXPECT_EQ(shared.acks_failed, 0);
  EXPECT_EQ(static_cast<uint64_t>(shared.acks_ok), n / 10);
}

TEST_F(RuntimeTest, ReloadRemovingAParserDrainsItIntoItsConsumer) {
  pipeline.components.push_back(component("src", kSource, {}, ints({{"count", 0}, {"batch", 10}})));
  pipeline.components.push_back(component("even", kParser, {"src"}));
  pipeline.components.back().workers = 2;
  pipeline.components.push_back(component("out", kSink, {"even"}, ints({{"slot", 0}})));
  start();
  ASSERT_TRUE(wait_counter("out.events_out", 1000));

  // The sink now reads the source directly; the parser is removed.
  auto next = std::make_shared<Generation>();
  next->pipeline.components.push_back(pipeline.components[0]);
  next->pipeline.components.push_back(component("out", kSink, {"src"}, ints({{"slot", 0}})));
  graph::Diff diff;
  ASSERT_TRUE(reload(next, &diff));
  EXPECT_EQ(diff.removed, std::vector<std::string>{"even"});
  uint64_t after = counter("src.events_out");
  ASSERT_TRUE(wait_counter("out.events_in", counter("even.events_out") + 1000));
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));

  // The parser took a prefix 0..k-1 of the sequence and delivered its even numbers; everything
  // from k on went straight to the sink. Each number arrives once.
  uint64_t n = counter("src.events_out");
  uint64_t k = counter("even.events_in");
  std::multiset<int64_t> expected;
  for (uint64_t i = 0; i < n; ++i)
    if (i >= k || i % 2 == 0) expected.insert(static_cast<int64_t>(i));
  EXPECT_EQ(shared.written[0], expected);
  EXPECT_EQ(counter("out.events_out"), expected.size());
  EXPECT_LE(k, after);
  rt.reset();
  EXPECT_EQ(shared.acks_failed, 0);
  EXPECT_EQ(static_cast<uint64_t>(shared.acks_ok), n / 10);
}

TEST_F(RuntimeTest, ReloadWhoseNewSinkCannotStartChangesNothing) {
  pipeline.components.push_back(component("src", kSource, {}, ints({{"count", 0}, {"batch", 10}})));
  pipeline.components.push_back(component("a", kSink, {"src"}, ints({{"slot", 0}})));
  start();
  ASSERT_TRUE(wait_counter("a.events_out", 100));

  auto next = std::make_shared<Generation>();
  next->pipeline.components.push_back(pipeline.components[0]);
  next->pipeline.components.push_back(
      component("a", kSink, {"src"}, ints({{"slot", 0}, {"fail_start", 1}})));
  EXPECT_FALSE(reload(next));
  EXPECT_EQ(rt->components(), (std::vector<std::string>{"src", "a"}));
  uint64_t at_failure = counter("a.events_out");
  ASSERT_TRUE(wait_counter("a.events_out", at_failure + 1000));
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));
  EXPECT_EQ(shared.written[0], sequence(counter("src.events_out")));
}

TEST_F(RuntimeTest, ReloadDoesNotWaitForAPushBlockedOnAStuckSink) {
  shared.sink_fails = true;
  pipeline.components.push_back(component("src", kSource, {}, ints({{"count", 0}, {"batch", 10}})));
  pipeline.components.push_back(component("a", kSink, {"src"}, ints({{"slot", 0}})));
  start();
  // The sink retries for ever; its queue fills and the source blocks inside a push.
  ASSERT_TRUE(wait_counter("a.retries", 1));
  ASSERT_TRUE(wait_counter("src.events_out", 10 * (4 + 1 + 1)));

  auto next = std::make_shared<Generation>();
  next->pipeline.components = pipeline.components;
  next->pipeline.components.push_back(component("b", kSink, {"src"}, ints({{"slot", 1}})));
  ASSERT_TRUE(reload(next));
  EXPECT_EQ(rt->components(), (std::vector<std::string>{"src", "a", "b"}));

  // Once the sink recovers, the blocked push completes and the source feeds both sinks.
  shared.sink_fails = false;
  ASSERT_TRUE(wait_counter("b.events_out", 1000));
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));
  uint64_t n = counter("src.events_out");
  EXPECT_EQ(shared.written[0], sequence(n));
  EXPECT_EQ(*shared.written[1].rbegin(), static_cast<int64_t>(n) - 1);
}

// Every batch's first write fails and is retried; the retry fails for good when the batch starts
// at a multiple of 20, else succeeds.
class FlakySink : public Sink {
 public:
  FlakySink(const Options&, Diagnostics&) {}
  SinkResult write(Context&, const Batch& b) override {
    if (++calls_ % 2 == 1) return SinkResult::retryable("busy");
    if (b.events().front().time_ns % 20 == 0) return SinkResult::permanent("refused");
    return SinkResult::ok();
  }

 private:
  int calls_ = 0;
};

TEST_F(RuntimeTest, RepeatedFailuresAreLoggedOncePerPlaceAndKind) {
  static constexpr ComponentDescriptor kFlaky =
      describe<FlakySink>(Kind::kSink, "flaky", "", kNoOptions);
  std::ostringstream captured;
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  use_data_dir();
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 60}, {"batch", 10}})));
  pipeline.components.push_back(component("out", kFlaky, {"src"}));
  start();
  ASSERT_TRUE(rt->wait_for(kWait));
  rt.reset();
  spdlog::set_default_logger(previous);

  // Six retries and three permanent failures within a second: one line of each kind, neither
  // hiding the other.
  EXPECT_EQ(counter("out.retries"), 6u);
  EXPECT_EQ(counter("out.failed"), 30u);
  EXPECT_EQ(counter("out.dead_letters"), 30u);
  std::string log = captured.str();
  auto occurrences = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(occurrences("write failed, retrying: busy"), 1u) << log;
  EXPECT_EQ(occurrences("failed permanently: refused"), 1u) << log;
}

TEST_F(RuntimeTest, MaxAttemptsTurnsAForeverFailingBatchIntoADeadLetteredOne) {
  shared.sink_fails = true;
  use_data_dir();
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 50}, {"batch", 10}})));
  pipeline.components.push_back(component("out", kSink, {"src"}, ints({{"slot", 0}})));
  pipeline.components.back().retry.max_attempts = 3;
  start();
  // Without the limit the sink would retry for ever and the batch job would never end.
  ASSERT_TRUE(rt->wait_for(kWait));
  rt.reset();
  EXPECT_EQ(counter("out.events_out"), 0u);
  EXPECT_EQ(counter("out.failed"), 50u);
  EXPECT_EQ(counter("out.dead_letters"), 50u);
  EXPECT_EQ(counter("out.shutdown_dropped"), 0u);
  // Five consecutive failures open the breaker; each later batch is a probe that fails.
  EXPECT_GE(counter("out.breaker_opened"), 1u);
  EXPECT_EQ(counter("out.breaker_half_open"), counter("out.breaker_opened") - 1);
  EXPECT_EQ(counter("out.breaker_closed"), 0u);
  EXPECT_EQ(shared.acks_ok, 0);
  EXPECT_EQ(shared.acks_failed, 5);
}

TEST_F(RuntimeTest, AnOpenBreakerSpoolsBatchesAndTheyAreReplayedWhenItCloses) {
  pipeline.components.push_back(component("src", kSource, {}, ints({{"count", 0}, {"batch", 10}})));
  failing_sink_with_spool("src");
  start();
  // While the sink fails the breaker opens and batches are acknowledged into the spool.
  ASSERT_TRUE(wait_counter("out.spooled", 500));
  EXPECT_GE(counter("out.breaker_opened"), 1u);
  EXPECT_GT(shared.acks_ok, 0);
  // What the admin server shows of it: out of closed since it opened, records waiting.
  auto sinks = rt->sinks();
  ASSERT_EQ(sinks.size(), 1u);
  EXPECT_NE(sinks[0].not_closed_since_ns, 0);
  EXPECT_GT(sinks[0].spool_records, 0u);
  EXPECT_NE(sinks[0].spool_oldest_ns, 0);
  shared.sink_fails = false;
  ASSERT_TRUE(wait_counter("out.replayed", counter("out.spooled")));
  ASSERT_TRUE(wait_counter("out.events_out", 2000));
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));
  rt.reset();
  // Every event the source emitted was written once, or is in the spool or was dropped at the
  // stop; the spool's share was acknowledged when it was spooled.
  uint64_t emitted = counter("src.events_out");
  uint64_t pending = counter("out.spooled") - counter("out.replayed");
  EXPECT_EQ(counter("out.events_out") + pending + counter("out.shutdown_dropped"), emitted);
  std::lock_guard lock(shared.mu);
  EXPECT_EQ(shared.written[0].size(), counter("out.events_out"));
  std::set<int64_t> unique(shared.written[0].begin(), shared.written[0].end());
  EXPECT_EQ(unique.size(), shared.written[0].size()) << "no event written twice";
  EXPECT_GE(counter("out.breaker_closed"), 1u);
}

TEST_F(RuntimeTest, BackfillWritesNewDataWhileTheSpoolDrainsAtItsRate) {
  pipeline.components.push_back(component("src", kSource, {}, ints({{"count", 0}, {"batch", 10}})));
  failing_sink_with_spool("src");
  config::ComponentConfig& out = pipeline.components.back();
  out.spool.replay = config::SpoolConfig::Replay::kBackfill;
  out.spool.replay_rate = 200;  // slow: the spool takes seconds to drain
  start();
  ASSERT_TRUE(wait_counter("out.spooled", 2000));
  shared.sink_fails = false;
  // New data goes straight to the sink while the spool is still far from drained.
  ASSERT_TRUE(wait_counter("out.events_out", counter("out.replayed") + 5000));
  EXPECT_LT(counter("out.replayed"), counter("out.spooled"));
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));
  rt.reset();
  uint64_t pending = counter("out.spooled") - counter("out.replayed");
  EXPECT_EQ(counter("out.events_out") + pending + counter("out.shutdown_dropped"),
            counter("src.events_out"));
}

TEST_F(RuntimeTest, ASpoolThatKeepsGrowingWhileTheSinkIsUpIsReportedAnOutageIsNot) {
  auto lines = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", lines));
  auto warned = [&] {
    for (const std::string& line : lines->last_formatted())
      if (line.find("while the sink was up") != std::string::npos) return line;
    return std::string();
  };
  constexpr int64_t kMinute = 60'000'000'000;
  pipeline.components.push_back(component("src", kSource, {}, ints({{"count", 0}, {"batch", 10}})));
  failing_sink_with_spool("src");
  config::ComponentConfig& out = pipeline.components.back();
  out.spool.replay_rate = 100;            // far below what the source emits
  out.breaker.open_for_ns = 2 * kMinute;  // the steps below do not close it by themselves
  start();

  // An outage: the spool grows for minutes with the breaker open. That is what the spool is for.
  ASSERT_TRUE(wait_counter("out.spooled", 1000));
  for (int i = 0; i < 2; ++i) {
    clock.step(kMinute / 2 + 1'000'000'000);
    ASSERT_TRUE(wait_counter("out.spooled", counter("out.spooled") + 1000));
  }
  EXPECT_EQ(counter("out.breaker_closed"), 0u);
  EXPECT_EQ(warned(), "");

  // The sink is back; ordered replay keeps new data behind the spool, which still grows because
  // the input is above replay_rate. After 30 s of that the operator is told.
  shared.sink_fails = false;
  clock.step(2 * kMinute);  // the breaker's open_for ends; its probe succeeds
  ASSERT_TRUE(wait_counter("out.breaker_closed", 1));
  // Every batch the sink takes in passes through replay(), which judges the spool's growth.
  ASSERT_TRUE(wait_counter("out.spooled", counter("out.spooled") + 1000));
  EXPECT_EQ(warned(), "");
  clock.step(kMinute / 2 + 1'000'000'000);
  ASSERT_TRUE(wait_counter("out.spooled", counter("out.spooled") + 1000));
  EXPECT_EQ(counter("out.breaker_opened"), 1u) << "the sink stayed up";
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));
  rt.reset();
  spdlog::set_default_logger(previous);
  std::string line = warned();
  EXPECT_NE(line.find("[warning] [sinks.out] the spool grew to "), std::string::npos) << line;
  EXPECT_NE(line.find("(spool.replay_rate 100); at this pace it will not empty"), std::string::npos)
      << line;
}

TEST_F(RuntimeTest, AnAggregatorIsInspectedOnItsOwnThreadWhileItRuns) {
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 100}, {"batch", 10}, {"linger", 1}})));
  pipeline.components.push_back(component("agg", kAgg, {"src"}));
  pipeline.components.push_back(component("out", kSink, {"agg"}, ints({{"slot", 0}})));
  start();
  ASSERT_TRUE(wait_counter("agg.events_in", 100));
  // Its state once everything has been consumed: 0 + 1 + ... + 99.
  Runtime::Inspection seen = rt->inspect("agg", {}, kWait);
  ASSERT_EQ(seen.status, Runtime::Inspection::Status::kOk);
  ASSERT_EQ(seen.rows->size(), 1u);
  EXPECT_EQ(seen.rows->events()[0].time_ns, 4950);
  // Several threads at once, each answered.
  std::vector<std::thread> askers;
  std::atomic<int> answered{0};
  for (int i = 0; i < 4; ++i)
    askers.emplace_back([&] {
      if (rt->inspect("agg", {}, kWait).status == Runtime::Inspection::Status::kOk) ++answered;
    });
  for (auto& t : askers) t.join();
  EXPECT_EQ(answered, 4);
  EXPECT_EQ(rt->inspect("src", {}, kWait).status,
            Runtime::Inspection::Status::kNoSuchAggregator);  // a source is no aggregator
  EXPECT_EQ(rt->inspect("nope", {}, kWait).status, Runtime::Inspection::Status::kNoSuchAggregator);
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));
  EXPECT_EQ(rt->inspect("agg", {}, kWait).status, Runtime::Inspection::Status::kNoAnswer);
}

// Acknowledgements: every path a batch can end on gives its source the right verdict.

class ThrowingAggregator : public Aggregator {
 public:
  ThrowingAggregator(const Options&, Diagnostics&) {}
  void consume(Context&, Batch&) override { throw std::runtime_error("broken"); }
  void advance(Context&, Output&, int64_t) override {}
  void flush(Context&, Output&) override {}
};

TEST_F(RuntimeTest, AnAggregatorWhoseConsumeThrowsFailsItsInputsAcksAndCountsThem) {
  static constexpr ComponentDescriptor kThrowing =
      describe<ThrowingAggregator>(Kind::kAggregator, "throwing", "", kNoOptions);
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 10}, {"batch", 10}})));
  pipeline.components.push_back(component("agg", kThrowing, {"src"}));
  pipeline.components.push_back(component("out", kSink, {"agg"}, ints({{"slot", 0}})));
  start();
  ASSERT_TRUE(wait_counter("agg.acks_unresolved", 1));
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));
  EXPECT_EQ(shared.acks_ok, 0);
  EXPECT_EQ(shared.acks_failed, 1);
  EXPECT_EQ(counter("agg.acks_unresolved"), 1u);
}

TEST_F(RuntimeTest, AnOutputNothingReadsFailsItsAcksAndCountsThem) {
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 50}, {"batch", 10}})));
  start();
  ASSERT_TRUE(rt->wait_for(kWait));
  EXPECT_EQ(counter("src.unconsumed"), 50u);
  EXPECT_EQ(counter("src.acks_unresolved"), 5u);
  EXPECT_EQ(shared.acks_ok, 0);
  EXPECT_EQ(shared.acks_failed, 5);
}

TEST_F(RuntimeTest, ABatchAFullDropNewestQueueDropsFailsItsAck) {
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 100}, {"batch", 10}})));
  pipeline.components.push_back(
      component("out", kSink, {"src"}, ints({{"slot", 0}, {"gated", 1}})));
  pipeline.components.back().queue.max_batches = 1;
  pipeline.components.back().queue.when_full = config::WhenFull::kDropNewest;
  start();
  // The sink holds its first batch and its queue one more: of ten, at least eight are dropped.
  ASSERT_TRUE(wait_counter("out.queue_dropped", 80));
  shared.open_gate();
  ASSERT_TRUE(rt->wait_for(kWait));
  EXPECT_EQ(counter("out.queue_dropped") + counter("out.events_out"), 100u);
  EXPECT_EQ(static_cast<uint64_t>(shared.acks_failed) * 10, counter("out.queue_dropped"));
  EXPECT_EQ(static_cast<uint64_t>(shared.acks_ok) * 10, counter("out.events_out"));
  EXPECT_EQ(counter("out.acks_unresolved") + counter("src.acks_unresolved"), 0u);
}

TEST_F(RuntimeTest, FanOutToTwoSinksOneOfWhichDeadLettersFailsTheAck) {
  use_data_dir();
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 30}, {"batch", 10}})));
  pipeline.components.push_back(component("a", kSink, {"src"}, ints({{"slot", 0}})));
  pipeline.components.push_back(
      component("b", kSink, {"src"}, ints({{"slot", 1}, {"refuses", 1}})));
  start();
  ASSERT_TRUE(rt->wait_for(kWait));
  EXPECT_EQ(counter("a.events_out"), 30u);
  EXPECT_EQ(counter("b.dead_letters"), 30u);
  EXPECT_EQ(shared.acks_ok, 0);
  EXPECT_EQ(shared.acks_failed, 3);
  EXPECT_EQ(counter("a.acks_unresolved") + counter("b.acks_unresolved"), 0u);
}

TEST_F(RuntimeTest, ASpooledBatchIsAcknowledgedOnceWhenSpooledAndNotAgainAtReplay) {
  pipeline.components.push_back(
      component("src", kSource, {}, ints({{"count", 200}, {"batch", 10}, {"linger", 1}})));
  failing_sink_with_spool("src");
  start();
  // Every batch ends in the spool while the sink fails, and is acknowledged there.
  ASSERT_TRUE(wait_counter("out.spooled", 200));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(kWait);
  while (shared.acks_ok < 20 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_EQ(shared.acks_ok, 20);
  EXPECT_EQ(counter("out.events_out"), 0u);
  shared.sink_fails = false;
  ASSERT_TRUE(wait_counter("out.replayed", 200));
  rt->request_stop();
  ASSERT_TRUE(rt->wait_for(kWait));
  rt.reset();
  EXPECT_EQ(counter("out.events_out"), 200u);
  EXPECT_EQ(shared.acks_ok, 20);  // the replay acknowledged nothing again
  EXPECT_EQ(shared.acks_failed, 0);
}

// Pushes batches 0 and 1 (blocking), then offers batch 2 with try_push() while the gated sink's
// queue is full, and records what happened.
struct TryPushReport {
  PushResult first = PushResult::kOk;
  bool kept = false;
  bool writable_while_full = true;
  bool writable_after = false;
  PushResult second = PushResult::kFull;
  SteppedClock* clock = nullptr;
  PushResult past_spill_delay = PushResult::kOk;  // a sink without a spool: still kFull
};
TryPushReport* g_report = nullptr;

class TryPushSource : public Source {
 public:
  TryPushSource(const Options&, Diagnostics&) {}
  void run(Context&, Output& out) override {
    auto make = [](int64_t n) {
      auto b = std::make_unique<Batch>();
      for (int64_t i = 0; i < 10; ++i) b->add({}, n * 10 + i);
      b->acks.push_back(AckRef::make(
          [](bool ok) { (ok ? g_shared->acks_ok : g_shared->acks_failed).fetch_add(1); }));
      return b;
    };
    out.push(make(0));
    out.push(make(1));
    BatchPtr b = make(2);
    g_report->first = out.try_push(b);  // must not wait: the gate opens only below
    g_report->kept = b != nullptr && b->size() == 10 && b->acks.size() == 1;
    g_report->writable_while_full = out.wait_writable(1'000'000);
    g_report->clock->step(2'000'000'000);  // past the delay after which a spool takes batches
    g_report->past_spill_delay = out.try_push(b);
    g_shared->open_gate();
    g_report->writable_after = out.wait_writable(kWait);
    if (b) g_report->second = out.try_push(b);
  }
};

TEST_F(RuntimeTest, TryPushOnAFullQueueKeepsTheBatchAndReachesNoConsumerOfTheFanOut) {
  static constexpr ComponentDescriptor kTryPush =
      describe<TryPushSource>(Kind::kSource, "try_push", "", kNoOptions);
  TryPushReport report;
  report.clock = &clock;
  g_report = &report;
  pipeline.components.push_back(component("src", kTryPush, {}));
  pipeline.components.push_back(component("a", kSink, {"src"}, ints({{"slot", 0}, {"gated", 1}})));
  pipeline.components.back().queue.max_batches = 1;
  pipeline.components.push_back(component("b", kSink, {"src"}, ints({{"slot", 1}})));
  start();
  ASSERT_TRUE(rt->wait_for(kWait));
  g_report = nullptr;
  EXPECT_EQ(report.first, PushResult::kFull);
  EXPECT_TRUE(report.kept);
  EXPECT_FALSE(report.writable_while_full);
  EXPECT_EQ(report.past_spill_delay, PushResult::kFull);
  EXPECT_TRUE(report.writable_after);
  EXPECT_EQ(report.second, PushResult::kOk);
  // Sink b, which had room, did not get batch 2 from the first try: each event once, in both.
  EXPECT_EQ(shared.written[0], sequence(30));
  EXPECT_EQ(shared.written[1], sequence(30));
  EXPECT_EQ(counter("src.events_out"), 30u);
  EXPECT_EQ(shared.acks_ok, 3);
  EXPECT_EQ(shared.acks_failed, 0);
}

// Pushes one batch, closes its output and waits for that batch's ack, which the aggregator
// downstream gives only at its flush: possible only because close() ends the aggregator's input.
struct CloseReport {
  bool acked_before_return = false;
  bool push_after_close = true;
};
CloseReport* g_close = nullptr;

class ClosingSource : public Source {
 public:
  ClosingSource(const Options&, Diagnostics&) {}
  void run(Context&, Output& out) override {
    auto done = std::make_shared<std::atomic<bool>>(false);
    auto b = std::make_unique<Batch>();
    b->add({}, 7);
    b->acks.push_back(AckRef::make([done](bool ok) {
      (ok ? g_shared->acks_ok : g_shared->acks_failed).fetch_add(1);
      done->store(true);
    }));
    out.push(std::move(b));
    out.close();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(kWait);
    while (!done->load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    g_close->acked_before_return = done->load();
    auto late = std::make_unique<Batch>();
    late->add({}, 8);
    g_close->push_after_close = out.push(std::move(late));
  }
};

TEST_F(RuntimeTest, ASourceThatClosesItsOutputHearsBackBeforeItReturns) {
  static constexpr ComponentDescriptor kClosing =
      describe<ClosingSource>(Kind::kSource, "closing", "", kNoOptions);
  CloseReport report;
  g_close = &report;
  pipeline.components.push_back(component("src", kClosing, {}));
  pipeline.components.push_back(component("sum", kAgg, {"src"}));
  pipeline.components.push_back(component("out", kSink, {"sum"}, ints({{"slot", 0}})));
  start();
  ASSERT_TRUE(rt->wait_for(kWait));
  g_close = nullptr;
  EXPECT_TRUE(report.acked_before_return);
  EXPECT_FALSE(report.push_after_close);  // refused, and counted
  EXPECT_EQ(counter("src.unconsumed"), 1u);
  EXPECT_EQ(shared.written[0], std::multiset<int64_t>{7});
  EXPECT_EQ(shared.acks_ok, 1);
}

}  // namespace
}  // namespace ingestd::runtime

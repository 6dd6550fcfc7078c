#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include "config/config.h"
#include "fake_context.h"
#include "ingestd/plugin.h"
#include "plugin_test_support.h"
#include "source/generator/generator_source.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::CollectingOutput;
using ingestd::testing::FakeContext;

constexpr ComponentDescriptor kDescriptor = describe<GeneratorSource>(
    Kind::kSource, "generator", kGeneratorSourceDoc, kGeneratorSourceOptions);

Options parse_options(const std::string& yaml) {
  return ingestd::testing::options_or_fail(kDescriptor, yaml);
}

std::vector<std::string> texts(const std::vector<BatchPtr>& batches) {
  std::vector<std::string> out;
  for (const auto& b : batches)
    for (const Event& e : b->events()) out.emplace_back(e.raw);
  return out;
}

std::vector<size_t> sizes(const std::vector<BatchPtr>& batches) {
  std::vector<size_t> out;
  for (const auto& b : batches) out.push_back(b->size());
  return out;
}

struct Generating {
  FakeContext ctx{"gen"};
  CollectingOutput out;

  void run(const std::string& yaml) {
    CollectingDiagnostics diag;
    GeneratorSource source(parse_options(yaml), diag);
    ASSERT_TRUE(diag.errors.empty()) << diag.errors[0].second;
    ASSERT_TRUE(source.start(ctx));
    source.run(ctx, out);
  }
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) return parts;
    start = pos + 1;
  }
}

TEST(Generator, StopsAfterCountInBatchesOfMaxEvents) {
  Generating g;
  g.run("{count: 2500, template: 'e{{seq}}'}");
  EXPECT_EQ(sizes(g.out.batches), (std::vector<size_t>{1024, 1024, 452}));
  EXPECT_EQ(g.ctx.count("events"), 2500u);
  std::vector<std::string> lines = texts(g.out.batches);
  // fmt rather than "e" + std::to_string(i): GCC 12 at -O3 warns falsely (-Wrestrict) there.
  for (size_t i = 0; i < lines.size(); ++i) ASSERT_EQ(lines[i], fmt::format("e{}", i));
  const Batch& b = *g.out.batches[0];
  EXPECT_EQ(b.origin.component, "gen");
  EXPECT_EQ(b.ingest_time_ns, g.ctx.clock().now_ns());
  EXPECT_EQ(b.events()[0].time_ns, b.ingest_time_ns);
}

TEST(Generator, BatchesStopAtMaxBytes) {
  Generating g;
  g.ctx.limits.max_bytes = 1000;
  g.run("{count: 55, template: '" + std::string(100, 'x') + "'}");
  EXPECT_EQ(sizes(g.out.batches), (std::vector<size_t>{10, 10, 10, 10, 10, 5}));
}

TEST(Generator, EqualSeedsGiveEqualOutputAndOtherSeedsDoNot) {
  const std::string tmpl = "'{{choice a,b,c,d}} {{int 0 1000000}} {{hex 12}} {{float 0 1}}'";
  Generating a, b, c;
  a.run("{count: 300, seed: 42, template: " + tmpl + "}");
  b.run("{count: 300, seed: 42, template: " + tmpl + "}");
  c.run("{count: 300, seed: 43, template: " + tmpl + "}");
  EXPECT_EQ(texts(a.out.batches), texts(b.out.batches));
  EXPECT_NE(texts(a.out.batches), texts(c.out.batches));
}

TEST(Generator, PlaceholdersRenderWithinTheirRanges) {
  Generating g;
  g.run(
      "{count: 3000, template: '{{int -5 5}}|{{float 1.5 2.25}}|{{hex 20}}|{{seq}}|"
      "{{ choice red, green ,blue }}|{{now_s}}|{{now_ms}}|{{now_ns}}|{{int 7 7}}'}");
  const int64_t now = g.ctx.clock().now_ns();
  std::set<int64_t> ints;
  std::set<std::string> colors;
  double min_f = 10, max_f = 0;
  std::vector<std::string> lines = texts(g.out.batches);
  ASSERT_EQ(lines.size(), 3000u);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::string> p = split(lines[i], '|');
    ASSERT_EQ(p.size(), 9u) << lines[i];
    int64_t v = std::stoll(p[0]);
    EXPECT_GE(v, -5);
    EXPECT_LE(v, 5);
    ints.insert(v);
    ASSERT_EQ(p[1].size(), 4u) << p[1];  // two decimals, as written in 2.25
    double f = std::stod(p[1]);
    min_f = std::min(min_f, f);
    max_f = std::max(max_f, f);
    EXPECT_EQ(p[2].size(), 20u);
    EXPECT_EQ(p[2].find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(p[3], std::to_string(i));
    colors.insert(p[4]);
    EXPECT_EQ(p[5], std::to_string(now / 1'000'000'000));
    EXPECT_EQ(p[6], std::to_string(now / 1'000'000));
    EXPECT_EQ(p[7], std::to_string(now));
    EXPECT_EQ(p[8], "7");
  }
  EXPECT_EQ(ints.size(), 11u);  // every value of [-5, 5] appears in 3000 draws
  EXPECT_EQ(colors, (std::set<std::string>{"red", "green", "blue"}));
  EXPECT_GE(min_f, 1.5);
  EXPECT_LE(max_f, 2.25);
  EXPECT_LT(min_f, 1.6);
  EXPECT_GT(max_f, 2.15);
}

TEST(Generator, ChoicesAndIntsAreRoughlyUniform) {
  Generating g;
  g.run("{count: 40000, template: '{{choice a,b,c,d}}'}");
  std::map<std::string, int> counts;
  for (const std::string& s : texts(g.out.batches)) ++counts[s];
  ASSERT_EQ(counts.size(), 4u);
  for (const auto& [value, n] : counts) {
    EXPECT_GT(n, 9400) << value;  // 10000 expected, sd ~87
    EXPECT_LT(n, 10600) << value;
  }
}

TEST(Generator, DefaultTemplateIsAStreamStartsJsonEvent) {
  Generating g;
  g.run("{count: 200}");
  const int64_t now_ms = g.ctx.clock().now_ns() / 1'000'000;
  const std::set<std::string_view> devices{"xbox_one", "ps4", "roku", "apple_tv"};
  const std::set<std::string_view> sevs{"success", "error"};
  const std::set<std::string_view> titles{"narcos", "dark", "ozark", "mindhunter"};
  const std::set<std::string_view> countries{"UK", "US", "BR", "DE"};
  simdjson::ondemand::parser parser;
  int successes = 0;
  for (const auto& b : g.out.batches) {
    for (const Event& e : b->events()) {
      // Batch::copy pads every event's bytes, so simdjson may read them in place.
      simdjson::padded_string_view json(e.raw.data(), e.raw.size(), e.raw.size() + Batch::kPadding);
      simdjson::ondemand::document doc = parser.iterate(json);
      std::string_view device = doc["device"].get_string();
      std::string_view sev = doc["sev"].get_string();
      std::string_view title = doc["title"].get_string();
      std::string_view country = doc["country"].get_string();
      int64_t time = doc["time"].get_int64();
      EXPECT_TRUE(devices.count(device)) << device;
      EXPECT_TRUE(sevs.count(sev)) << sev;
      EXPECT_TRUE(titles.count(title)) << title;
      EXPECT_TRUE(countries.count(country)) << country;
      EXPECT_EQ(time, now_ms);
      successes += sev == "success";
    }
  }
  EXPECT_GT(successes, 110);  // 3 of 4 choices: 150 expected
  EXPECT_LT(successes, 190);
}

TEST(Generator, BadTemplatesAreReportedOnTheTemplateOption) {
  for (const char* tmpl :
       {"{{nope}}", "x {{seq", "{{}}", "{{int 5 1}}", "{{int a b}}", "{{int 1}}", "{{float 2 1}}",
        "{{hex 0}}", "{{hex 5000}}", "{{choice}}", "{{seq 3}}", "{{now_ms x}}"}) {
    SCOPED_TRACE(tmpl);
    CollectingDiagnostics diag;
    GeneratorSource source(parse_options(std::string("{template: '") + tmpl + "'}"), diag);
    ASSERT_EQ(diag.errors.size(), 1u);
    EXPECT_EQ(diag.errors[0].first, "template");
    EXPECT_FALSE(diag.errors[0].second.empty());
  }
  std::vector<config::Error> errors;
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "{rate: -1}", errors));
}

TEST(Generator, ALiteralTemplateAndClosingBracesStayAsWritten) {
  Generating g;
  g.run("{count: 2, template: 'a }} b {{seq}}}'}");
  EXPECT_EQ(texts(g.out.batches), (std::vector<std::string>{"a }} b 0}", "a }} b 1}"}));
}

// Event k is due k / rate seconds after the start; the source waits (advancing the fake clock,
// never sleeping) and emits every due event each time it wakes.
TEST(Generator, RatePacesByTheClock) {
  Generating g;
  g.ctx.limits.linger_ns = 100'000'000;
  const int64_t start = g.ctx.clock().monotonic_ns();
  g.run("{count: 5000, rate: 1000, template: x}");
  ASSERT_EQ(g.ctx.count("events"), 5000u);
  uint64_t total = 0;
  for (const auto& b : g.out.batches) {
    total += b->size();
    const int64_t t = b->ingest_time_ns - start;  // the fake clock's wall and monotonic agree
    const uint64_t due = std::min<uint64_t>(5000, static_cast<uint64_t>(t / 1'000'000) + 1);
    EXPECT_EQ(total, due) << "at " << t << " ns";
  }
  EXPECT_EQ(g.out.batches.front()->size(), 1u);
  EXPECT_EQ(g.out.batches[1]->size(), 100u);  // one linger of events
  // The last event is due at 4.999 s: the run took that long on the fake clock, and no longer
  // than one more linger.
  const int64_t elapsed = g.ctx.clock().monotonic_ns() - start;
  EXPECT_GE(elapsed, 4'999'000'000);
  EXPECT_LE(elapsed, 4'999'000'000 + 100'000'000);
}

TEST(Generator, SlowRatesWaitUntilTheNextEventIsDue) {
  Generating g;
  g.ctx.limits.linger_ns = 100'000'000;
  const int64_t start = g.ctx.clock().monotonic_ns();
  g.run("{count: 3, rate: 0.5, template: x}");
  ASSERT_EQ(sizes(g.out.batches), (std::vector<size_t>{1, 1, 1}));
  EXPECT_EQ(g.out.batches[1]->ingest_time_ns - start, 2'000'000'000);
  EXPECT_EQ(g.out.batches[2]->ingest_time_ns - start, 4'000'000'000);
}

TEST(Generator, CatchesUpInBatchesOfMaxEvents) {
  Generating g;
  g.ctx.limits.linger_ns = 100'000'000;
  g.ctx.limits.max_events = 1000;
  g.run("{count: 10001, rate: 100000, template: x}");
  // 1 event at t=0, then 10000 due after one linger: ten full batches without waiting.
  EXPECT_EQ(sizes(g.out.batches),
            (std::vector<size_t>{1, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}));
}

TEST(Generator, UnlimitedCountEndsWhenThePipelineStops) {
  class StopAfterWaits : public FakeContext {
   public:
    bool wait_for_stop(int64_t ns) override {
      if (++waits == 5) request_stop();
      return FakeContext::wait_for_stop(ns);
    }
    int waits = 0;
  };
  StopAfterWaits ctx;
  ctx.limits.linger_ns = 1'000'000'000;
  CollectingOutput out;
  CollectingDiagnostics diag;
  GeneratorSource source(parse_options("{rate: 10, template: x}"), diag);
  ASSERT_TRUE(source.start(ctx));
  source.run(ctx, out);
  EXPECT_EQ(ctx.waits, 5);
  // Event 0 at once, then 10 per second for the four waits that did not stop.
  EXPECT_EQ(out.event_count(), 41u);
}

TEST(GeneratorRng, BelowIsInRangeAndCoversIt) {
  GeneratorRng rng(7);
  std::vector<int> seen(3, 0);
  for (int i = 0; i < 3000; ++i) {
    uint64_t v = rng.below(3);
    ASSERT_LT(v, 3u);
    ++seen[v];
  }
  for (int n : seen) EXPECT_GT(n, 850);
  for (int i = 0; i < 1000; ++i) {
    double u = rng.unit();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

}  // namespace
}  // namespace ingestd::plugins

// The metrics registry: named counters as before, labelled series, histograms and collectors.
#include "runtime/metrics.h"

#include <gtest/gtest.h>

namespace ingestd::runtime {
namespace {

TEST(Metrics, NamedCountersAndTheStatsJsonAreUnchanged) {
  Metrics m;
  m.counter("gen.events_out").add(3);
  m.counter("a.x").add();
  EXPECT_EQ(&m.counter("gen.events_out"), &m.counter("gen.events_out"));
  EXPECT_EQ(m.to_json(), "{\"counters\": {\"a.x\": 1, \"gen.events_out\": 3}}\n");
}

TEST(Metrics, LabelledSeriesStayOutOfTheStatsFile) {
  Metrics m;
  m.describe("ingestd_bytes", MetricType::kCounter, "Bytes.");
  m.counter("ingestd_bytes", {{"component", "a"}}).add(10);
  m.counter("ingestd_bytes", {{"component", "b"}}).add(20);
  m.counter("ingestd_bytes", {{"component", "a"}}).add(5);
  m.histogram("ingestd_lat", {{"component", "a"}}).observe_ns(1000);
  EXPECT_TRUE(m.snapshot().empty());
  EXPECT_EQ(m.to_json(), "{\"counters\": {}}\n");
  auto families = m.collect();
  // ingestd_lat was never described: not exported.
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "ingestd_bytes");
  EXPECT_EQ(families[0].help, "Bytes.");
  EXPECT_EQ(families[0].type, MetricType::kCounter);
  ASSERT_EQ(families[0].samples.size(), 2u);
  EXPECT_EQ(families[0].samples[0].labels, (Labels{{"component", "a"}}));
  EXPECT_EQ(families[0].samples[0].value, 15);
  EXPECT_EQ(families[0].samples[1].value, 20);
}

TEST(Metrics, HistogramBucketsHoldValuesUpToTheirBound) {
  Histogram h({10, 100});
  for (int64_t v : {0, 10, 11, 100, 101, -5}) h.observe_ns(v);
  auto s = h.snapshot();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{3, 2, 1}));  // -5 counts as 0
  EXPECT_EQ(s.bounds, (std::vector<double>{10e-9, 100e-9}));
  EXPECT_DOUBLE_EQ(s.sum, 222e-9);
  const auto& latency = Histogram::latency_bounds_ns();
  EXPECT_EQ(latency.front(), 10'000);
  EXPECT_EQ(latency.back(), 10'000'000'000);
  EXPECT_TRUE(std::is_sorted(latency.begin(), latency.end()));
}

TEST(Metrics, CollectorsAddFamiliesUntilRemoved) {
  Metrics m;
  int calls = 0;
  int id = m.add_collector([&](std::vector<Family>& out) {
    ++calls;
    Family& f = out.emplace_back();
    f.name = "depth";
    f.help = "Depth.";
    f.samples.push_back({{}, 7, {}});
  });
  auto families = m.collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "depth");
  EXPECT_EQ(families[0].type, MetricType::kGauge);
  m.remove_collector(id);
  EXPECT_TRUE(m.collect().empty());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace ingestd::runtime

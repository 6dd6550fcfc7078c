#include "latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace ingestd::loadgen {
namespace {

// The nearest-rank percentile of a sorted sample, computed directly.
uint64_t exact(const std::vector<uint64_t>& sorted, double p) {
  const size_t rank = static_cast<size_t>(std::ceil(p * sorted.size() / 100.0 - 1e-9));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

void expect_close(uint64_t got, uint64_t want, const char* what) {
  const double allowed = static_cast<double>(want) / 256.0;
  EXPECT_LE(std::abs(static_cast<double>(got) - static_cast<double>(want)), allowed)
      << what << ": got " << got << ", exact " << want;
}

TEST(LatencyHistogramTest, PercentilesWithinTheStatedErrorOfTheExactOnes) {
  std::mt19937_64 rng(3);
  // Latencies from 50 us to seconds, log-normal like real ones, plus a few outliers.
  std::lognormal_distribution<double> dist(std::log(400'000.0), 1.0);
  std::vector<uint64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 100'000; ++i) {
    const uint64_t v = static_cast<uint64_t>(dist(rng)) + 1;
    values.push_back(v);
    h.record(v);
  }
  for (uint64_t outlier : {uint64_t{7'000'000'000}, uint64_t{12'345'678'901}}) {
    values.push_back(outlier);
    h.record(outlier);
  }
  std::sort(values.begin(), values.end());
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  for (double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0})
    expect_close(h.percentile(p), exact(values, p), "percentile");
  EXPECT_EQ(h.percentile(100), values.back());
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  std::vector<uint64_t> values;
  for (uint64_t v = 0; v < 256; ++v) {
    for (uint64_t k = 0; k <= v % 3; ++k) {
      h.record(v);
      values.push_back(v);
    }
  }
  for (double p = 0.5; p <= 100; p += 0.5) EXPECT_EQ(h.percentile(p), exact(values, p)) << p;
}

TEST(LatencyHistogramTest, PercentileOfFewValuesIsNearestRank) {
  LatencyHistogram h;
  for (uint64_t v : {1000, 2000, 3000, 4000}) h.record(v);
  expect_close(h.percentile(50), 2000, "p50");  // rank 2 of 4
  expect_close(h.percentile(51), 3000, "p51");  // rank 3
  EXPECT_EQ(h.percentile(100), 4000u);
  EXPECT_EQ(LatencyHistogram().percentile(50), 0u);
}

TEST(LatencyHistogramTest, MergeIsTheHistogramOfAllValues) {
  LatencyHistogram a, b, all;
  for (uint64_t v = 1; v < 100'000; v += 7) {
    (v % 2 ? a : b).record(v * 13);
    all.record(v * 13);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double p : {5.0, 50.0, 95.0, 99.0}) EXPECT_EQ(a.percentile(p), all.percentile(p));
}

}  // namespace
}  // namespace ingestd::loadgen

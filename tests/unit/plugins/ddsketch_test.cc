#include "aggregate/window/ddsketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace ingestd::plugins {
namespace {

constexpr double kAlpha = 0.01;
// Bucket boundaries are computed with log() and exp(): allow their rounding on top of alpha.
constexpr double kSlack = 1e-9;
const std::vector<double> kQuantiles = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1};

// The documented rank rule: the value of 0-based rank floor(q * (n - 1)) of the sorted values.
double exact_quantile(const std::vector<double>& sorted, double q) {
  return sorted[static_cast<size_t>(q * static_cast<double>(sorted.size() - 1))];
}

double relative_error(double estimate, double exact) {
  if (exact == 0) return estimate == 0 ? 0 : std::numeric_limits<double>::infinity();
  return std::abs(estimate - exact) / std::abs(exact);
}

DDSketch sketch_of(const std::vector<double>& values, double alpha = kAlpha,
                   size_t max_buckets = DDSketch::kDefaultMaxBuckets) {
  DDSketch sketch(alpha, max_buckets);
  for (double v : values) EXPECT_TRUE(sketch.add(v));
  return sketch;
}

struct Distribution {
  std::string name;
  std::function<double(std::mt19937_64&)> draw;
};

std::vector<Distribution> distributions() {
  return {
      {"uniform(0,1000)",
       [](std::mt19937_64& rng) { return std::uniform_real_distribution<double>(0, 1000)(rng); }},
      {"exponential(1)",
       [](std::mt19937_64& rng) { return std::exponential_distribution<double>(1)(rng); }},
      {"lognormal(0,2)",
       [](std::mt19937_64& rng) { return std::lognormal_distribution<double>(0, 2)(rng); }},
      {"normal(0,100)+10%zeros",
       [](std::mt19937_64& rng) {
         if (rng() % 10 == 0) return 0.0;
         return std::normal_distribution<double>(0, 100)(rng);
       }},
      {"all 42.5", [](std::mt19937_64&) { return 42.5; }},
      {"-lognormal(0,2)",
       [](std::mt19937_64& rng) { return -std::lognormal_distribution<double>(0, 2)(rng); }},
  };
}

std::vector<double> draw_values(const Distribution& d, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> values(n);
  for (double& v : values) v = d.draw(rng);
  return values;
}

TEST(DDSketch, QuantilesWithinRelativeAccuracyOfExactRankValues) {
  for (const Distribution& d : distributions()) {
    double worst = 0;
    for (size_t n : {1, 2, 10, 1000, 100000}) {
      std::vector<double> values = draw_values(d, n, 42 + n);
      const DDSketch sketch = sketch_of(values);
      std::sort(values.begin(), values.end());
      ASSERT_EQ(sketch.count(), n);
      EXPECT_EQ(sketch.min(), values.front());
      EXPECT_EQ(sketch.max(), values.back());
      EXPECT_EQ(sketch.collapsed_count(), 0u);
      double worst_n = 0;
      for (double q : kQuantiles) {
        const double exact = exact_quantile(values, q);
        const double estimate = sketch.quantile(q);
        const double error = relative_error(estimate, exact);
        EXPECT_LE(error, kAlpha + kSlack)
            << d.name << " n=" << n << " q=" << q << " exact=" << exact << " estimate=" << estimate;
        worst_n = std::max(worst_n, error);
      }
      EXPECT_EQ(sketch.quantile(0), values.front());
      EXPECT_EQ(sketch.quantile(1), values.back());
      std::printf("[ measured ] DDSketch alpha=1%% %-22s n=%-6zu worst relative error %.4f%%\n",
                  d.name.c_str(), n, 100 * worst_n);
      worst = std::max(worst, worst_n);
    }
    RecordProperty("ddsketch_worst_error_pct " + d.name, std::to_string(100 * worst));
  }
}

TEST(DDSketch, OtherAccuraciesHoldTheirBound) {
  const std::vector<Distribution> ds = distributions();
  for (double alpha : {0.001, 0.05}) {
    for (const Distribution& d : ds) {
      std::vector<double> values = draw_values(d, 20000, 7);
      // At 0.1 % the 2,048 default buckets cover a range of only 60x: lift the cap.
      const DDSketch sketch = sketch_of(values, alpha, size_t{1} << 16);
      EXPECT_EQ(sketch.collapsed_count(), 0u);
      std::sort(values.begin(), values.end());
      double worst = 0;
      for (int i = 0; i <= 1000; ++i) {
        const double q = i / 1000.0;
        const double error = relative_error(sketch.quantile(q), exact_quantile(values, q));
        EXPECT_LE(error, alpha + kSlack) << d.name << " alpha=" << alpha << " q=" << q;
        worst = std::max(worst, error);
      }
      std::printf(
          "[ measured ] DDSketch alpha=%g%% %-22s n=20000 q=0..1 step 0.001: worst %.4f%%\n",
          100 * alpha, d.name.c_str(), 100 * worst);
    }
  }
}

TEST(DDSketch, SingleValue) {
  for (double v : {1e-300, -3.25, 0.0, 7.0, 1e300}) {
    DDSketch sketch;
    ASSERT_TRUE(sketch.add(v));
    for (double q : kQuantiles) EXPECT_EQ(sketch.quantile(q), v) << v << " q=" << q;
  }
}

TEST(DDSketch, ZeroAndTinyValuesCountAsZero) {
  DDSketch sketch;
  sketch.add(-0.0);
  sketch.add(0.0);
  sketch.add(1e-310);  // subnormal: below kMinIndexable
  sketch.add(5.0);
  EXPECT_EQ(sketch.snapshot().zero_count, 3u);
  EXPECT_EQ(sketch.quantile(0.5), 0.0);   // rank 1 of 4
  EXPECT_EQ(sketch.quantile(0.67), 0.0);  // rank 2: 1e-310 estimated as 0
}

TEST(DDSketch, NonFiniteValuesAreRefused) {
  DDSketch sketch;
  sketch.add(1.0);
  EXPECT_FALSE(sketch.add(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_FALSE(sketch.add(std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(sketch.add(-std::numeric_limits<double>::infinity()));
  EXPECT_EQ(sketch.count(), 1u);
  EXPECT_EQ(sketch.min(), 1.0);
  EXPECT_EQ(sketch.max(), 1.0);
}

TEST(DDSketch, EmptySketchAndInvalidQuantilesGiveNaN) {
  DDSketch empty;
  EXPECT_EQ(empty.count(), 0u);
  EXPECT_TRUE(std::isnan(empty.quantile(0.5)));
  EXPECT_TRUE(std::isnan(empty.quantile(0)));
  EXPECT_TRUE(std::isnan(empty.min()));
  EXPECT_TRUE(std::isnan(empty.max()));
  DDSketch one;
  one.add(2.0);
  EXPECT_TRUE(std::isnan(one.quantile(-0.01)));
  EXPECT_TRUE(std::isnan(one.quantile(1.01)));
  EXPECT_TRUE(std::isnan(one.quantile(std::numeric_limits<double>::quiet_NaN())));
}

TEST(DDSketch, ExtremeMagnitudesStayWithinAccuracy) {
  std::vector<double> values = {std::numeric_limits<double>::max(),
                                -std::numeric_limits<double>::max(),
                                DDSketch::kMinIndexable,
                                -DDSketch::kMinIndexable,
                                1e300,
                                1e-300,
                                -1e-300,
                                1.0};
  // DBL_MIN .. DBL_MAX is some 71,000 buckets at 1 %: lift the cap so that none collapse.
  const DDSketch sketch = sketch_of(values, kAlpha, size_t{1} << 17);
  EXPECT_EQ(sketch.collapsed_count(), 0u);
  std::sort(values.begin(), values.end());
  for (size_t i = 0; i < values.size(); ++i) {
    const double q = static_cast<double>(i) / static_cast<double>(values.size() - 1);
    EXPECT_LE(relative_error(sketch.quantile(q), exact_quantile(values, q)), kAlpha + kSlack)
        << "q=" << q;
    EXPECT_TRUE(std::isfinite(sketch.quantile(q)));
  }
}

std::vector<double> mixed_values(size_t n, uint64_t seed) {
  std::vector<Distribution> ds = distributions();
  std::mt19937_64 rng(seed);
  std::vector<double> values(n);
  for (double& v : values) v = ds[rng() % ds.size()].draw(rng);
  return values;
}

void expect_same_quantiles(const DDSketch& a, const DDSketch& b) {
  EXPECT_EQ(a.count(), b.count());
  EXPECT_EQ(a.min(), b.min());
  EXPECT_EQ(a.max(), b.max());
  for (int i = 0; i <= 1000; ++i) {
    EXPECT_EQ(a.quantile(i / 1000.0), b.quantile(i / 1000.0)) << "q=" << i / 1000.0;
  }
}

TEST(DDSketch, MergeEqualsTheSketchOfAllValues) {
  for (size_t max_buckets : {DDSketch::kDefaultMaxBuckets, size_t{40}}) {
    const std::vector<double> values = mixed_values(50000, 11);
    DDSketch first(kAlpha, max_buckets);
    DDSketch second(kAlpha, max_buckets);
    for (size_t i = 0; i < values.size(); ++i) (i % 3 == 0 ? first : second).add(values[i]);
    const DDSketch all = sketch_of(values, kAlpha, max_buckets);

    DDSketch merged = first;
    merged.merge(second);
    EXPECT_EQ(merged.snapshot(), all.snapshot()) << max_buckets;
    expect_same_quantiles(merged, all);

    DDSketch other_way = second;
    other_way.merge(first);
    EXPECT_EQ(other_way.snapshot(), all.snapshot()) << max_buckets;

    DDSketch with_empty = all;
    with_empty.merge(DDSketch(kAlpha, max_buckets));
    EXPECT_EQ(with_empty.snapshot(), all.snapshot());
    DDSketch into_empty(kAlpha, max_buckets);
    into_empty.merge(all);
    EXPECT_EQ(into_empty.snapshot(), all.snapshot());
  }
}

TEST(DDSketch, MergeWithItselfDoublesEveryCount) {
  const std::vector<double> values = mixed_values(1000, 12);
  DDSketch twice = sketch_of(values);
  twice.merge(twice);
  std::vector<double> doubled = values;
  doubled.insert(doubled.end(), values.begin(), values.end());
  EXPECT_EQ(twice.snapshot(), sketch_of(doubled).snapshot());
}

TEST(DDSketch, RestoreFromSnapshotGivesIdenticalQuantiles) {
  for (size_t max_buckets : {DDSketch::kDefaultMaxBuckets, size_t{40}}) {
    const std::vector<double> values = mixed_values(30000, 13);
    const DDSketch sketch = sketch_of(values, kAlpha, max_buckets);
    const DDSketch::Snapshot saved = sketch.snapshot();
    const auto restored = DDSketch::restore(saved, max_buckets);
    ASSERT_TRUE(restored.has_value());
    EXPECT_EQ(restored->snapshot(), saved);
    expect_same_quantiles(*restored, sketch);

    // The restored sketch goes on like the original, collapsing included.
    DDSketch continued = *restored;
    DDSketch original = sketch;
    for (double v : mixed_values(5000, 14)) {
      continued.add(v);
      original.add(v);
    }
    EXPECT_EQ(continued.snapshot(), original.snapshot());
  }
  const auto empty = DDSketch::restore(DDSketch().snapshot());
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->count(), 0u);
  EXPECT_TRUE(std::isnan(empty->quantile(0.5)));
}

TEST(DDSketch, RestoreRefusesSnapshotsNoSketchCouldHold) {
  const DDSketch::Snapshot good = sketch_of({-2.0, 0.0, 1.0, 3.0}).snapshot();
  ASSERT_TRUE(DDSketch::restore(good).has_value());
  const auto refused = [&](const std::function<void(DDSketch::Snapshot&)>& spoil) {
    DDSketch::Snapshot s = good;
    spoil(s);
    return !DDSketch::restore(s).has_value();
  };
  EXPECT_TRUE(refused([](auto& s) { s.alpha = 0; }));
  EXPECT_TRUE(refused([](auto& s) { s.count += 1; }));
  EXPECT_TRUE(refused([](auto& s) { s.positive[0].count = 0; }));
  EXPECT_TRUE(refused([](auto& s) { s.positive.push_back(s.positive[0]); }));  // not ascending
  EXPECT_TRUE(refused([](auto& s) { s.positive[0].index = 1 << 30; }));
  EXPECT_TRUE(refused([](auto& s) { s.min = std::numeric_limits<double>::quiet_NaN(); }));
  EXPECT_TRUE(refused([](auto& s) { std::swap(s.min, s.max); }));
  EXPECT_TRUE(refused([](auto& s) {
    s.positive.clear();
    s.positive_collapsed = true;
    s.count = 2;
  }));
  EXPECT_FALSE(DDSketch::restore(good, 0).has_value());
}

TEST(DDSketch, CollapsingKeepsUpperQuantilesAccurate) {
  // 100,000 draws of lognormal(0, 1) span about e^-4.3 .. e^4.3: some 430 buckets at 1 %. A cap of
  // 256 keeps e^-0.8 .. e^4.3 and collapses the lowest fifth of the values.
  constexpr size_t kCap = 256;
  for (double sign : {1.0, -1.0}) {
    std::mt19937_64 rng(21);
    std::lognormal_distribution<double> dist(0, 1);
    std::vector<double> values(100000);
    for (double& v : values) v = sign * dist(rng);
    const DDSketch sketch = sketch_of(values, kAlpha, kCap);
    std::sort(values.begin(), values.end());
    const uint64_t collapsed = sketch.collapsed_count();
    ASSERT_GT(collapsed, 0u);
    EXPECT_LE(sketch.bytes(), sizeof(DDSketch) + 2 * kCap * sizeof(uint64_t));
    EXPECT_LE(sketch.snapshot().positive.size() + sketch.snapshot().negative.size(), kCap);
    int accurate = 0;
    double worst = 0;
    for (int i = 0; i <= 1000; ++i) {
      const double q = i / 1000.0;
      const auto rank = static_cast<uint64_t>(q * static_cast<double>(values.size() - 1));
      const double exact = exact_quantile(values, q);
      if (rank < collapsed && q != 0) {
        EXPECT_GE(sketch.quantile(q), exact - (kAlpha + kSlack) * std::abs(exact)) << "q=" << q;
        continue;
      }
      const double error = relative_error(sketch.quantile(q), exact);
      EXPECT_LE(error, kAlpha + kSlack) << "sign=" << sign << " q=" << q;
      worst = std::max(worst, error);
      ++accurate;
    }
    std::printf(
        "[ measured ] DDSketch alpha=1%% max_buckets=%zu %slognormal(0,1) n=100000: %llu values "
        "collapsed (%.2f%%), %d of 1001 quantiles above them, worst error %.4f%%\n",
        kCap, sign < 0 ? "-" : "", static_cast<unsigned long long>(collapsed),
        100.0 * static_cast<double>(collapsed) / 1e5, accurate, 100 * worst);
    EXPECT_GT(accurate, 700);
  }
}

// With both signs, each store collapses its own lowest values: the most negative ones and the
// smallest positive ones. Every other rank keeps the guarantee; a collapsed one can be estimated
// too high, but never more than alpha too low.
TEST(DDSketch, CollapsingBothSignsSparesEveryOtherRank) {
  constexpr size_t kCap = 256;
  std::mt19937_64 rng(22);
  std::lognormal_distribution<double> dist(0, 1);
  std::vector<double> values(100000);
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = i % 10 == 0 ? 0.0 : (i % 2 == 0 ? 1.0 : -1.0) * dist(rng);
  }
  const DDSketch sketch = sketch_of(values, kAlpha, kCap);
  std::sort(values.begin(), values.end());
  const DDSketch::Snapshot s = sketch.snapshot();
  ASSERT_TRUE(s.positive_collapsed);
  ASSERT_TRUE(s.negative_collapsed);
  const uint64_t negative_collapsed = s.negative.back().count;
  const uint64_t positive_collapsed = s.positive.front().count;
  EXPECT_EQ(sketch.collapsed_count(), negative_collapsed + positive_collapsed);
  const auto negatives =
      static_cast<uint64_t>(std::lower_bound(values.begin(), values.end(), 0.0) - values.begin());
  const uint64_t first_positive = negatives + s.zero_count;
  int accurate = 0;
  for (int i = 1; i < 1000; ++i) {
    const double q = i / 1000.0;
    const auto rank = static_cast<uint64_t>(q * static_cast<double>(values.size() - 1));
    const double exact = exact_quantile(values, q);
    const double estimate = sketch.quantile(q);
    if (rank < negative_collapsed ||
        (rank >= first_positive && rank < first_positive + positive_collapsed)) {
      EXPECT_GE(estimate, exact - (kAlpha + kSlack) * std::abs(exact)) << "q=" << q;
    } else {
      EXPECT_LE(relative_error(estimate, exact), kAlpha + kSlack) << "q=" << q;
      ++accurate;
    }
  }
  std::printf(
      "[ measured ] DDSketch alpha=1%% max_buckets=%zu +-lognormal(0,1) with 10%% zeros n=100000: "
      "%llu negative and %llu positive values collapsed, %d of 999 quantiles outside them "
      "accurate\n",
      kCap, static_cast<unsigned long long>(negative_collapsed),
      static_cast<unsigned long long>(positive_collapsed), accurate);
  EXPECT_GT(accurate, 500);
}

TEST(DDSketch, MemoryFollowsTheRangeOfValues) {
  // Durations from 1 ns to 1 h, in seconds, log-uniform.
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<double> exponent(std::log(1e-9), std::log(3600.0));
  DDSketch sketch;
  for (int i = 0; i < 200000; ++i) sketch.add(std::exp(exponent(rng)));
  const size_t buckets = sketch.snapshot().positive.size();
  const double expected = std::log(3600.0 / 1e-9) / std::log(1.01 / 0.99);
  std::printf(
      "[ measured ] DDSketch alpha=1%% 1 ns..1 h: %zu buckets (log(max/min)/log(gamma) = "
      "%.0f), %zu bytes\n",
      buckets, expected, sketch.bytes());
  EXPECT_NEAR(static_cast<double>(buckets), expected, 5);
  EXPECT_EQ(sketch.collapsed_count(), 0u);
  EXPECT_LE(sketch.bytes(), sizeof(DDSketch) + DDSketch::kDefaultMaxBuckets * sizeof(uint64_t));

  // Values inside the range the storage already covers do not grow it.
  const size_t before = sketch.bytes();
  for (int i = 0; i < 100000; ++i) sketch.add(std::exp(exponent(rng)));
  EXPECT_EQ(sketch.bytes(), before);
}

TEST(DDSketch, InvalidParametersAreRefused) {
  static_assert(DDSketch::valid_alpha(0.01));
  static_assert(!DDSketch::valid_alpha(0));
  static_assert(!DDSketch::valid_alpha(0.6));
  static_assert(!DDSketch::valid_max_buckets(0));
  EXPECT_THROW(DDSketch(0.0), std::invalid_argument);
  EXPECT_THROW(DDSketch(1.0), std::invalid_argument);
  EXPECT_THROW(DDSketch(0.01, 0), std::invalid_argument);
  DDSketch a(0.01);
  const DDSketch b(0.02);
  EXPECT_THROW(a.merge(b), std::invalid_argument);
}

}  // namespace
}  // namespace ingestd::plugins

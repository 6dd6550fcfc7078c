#include "latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ingestd::loadgen {

namespace {

constexpr uint64_t kSub = uint64_t{1} << LatencyHistogram::kSubBucketBits;  // 128
// Values below 2 * kSub have a bucket each; each power of two above has kSub buckets.
constexpr size_t kBuckets = 2 * kSub + (64 - LatencyHistogram::kSubBucketBits - 1) * kSub;

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

size_t LatencyHistogram::index_of(uint64_t value) {
  if (value < 2 * kSub) return value;
  const int exponent = std::bit_width(value) - 1;  // >= kSubBucketBits + 1
  const int shift = exponent - kSubBucketBits;     // >= 1
  const uint64_t top = value >> shift;             // in [kSub, 2 * kSub)
  return 2 * kSub + (shift - 1) * kSub + (top - kSub);
}

uint64_t LatencyHistogram::lower_bound_of(size_t index) {
  if (index < 2 * kSub) return index;
  const size_t shift = (index - 2 * kSub) / kSub + 1;
  const uint64_t top = kSub + (index - 2 * kSub) % kSub;
  return top << shift;
}

uint64_t LatencyHistogram::width_of(size_t index) {
  if (index < 2 * kSub) return 1;
  return uint64_t{1} << ((index - 2 * kSub) / kSub + 1);
}

void LatencyHistogram::record(uint64_t value) {
  ++counts_[index_of(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(p * count_ / 100.0 - 1e-9)));
  // (The epsilon keeps 99.9 % of 1000 at rank 999 despite 99.9 not being exact in binary.)
  if (rank == count_) return max_;  // exact at both ends
  if (rank == 1) return min_;
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t middle = lower_bound_of(i) + (width_of(i) - 1) / 2;
      return std::clamp(middle, min_, max_);
    }
  }
  return max_;
}

}  // namespace ingestd::loadgen

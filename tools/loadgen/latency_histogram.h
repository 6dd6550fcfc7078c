// ingestd-loadgen: request latencies, kept in a fixed-size log-linear histogram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ingestd::loadgen {

// Counts values (latencies in ns) in buckets of 1/128 of a power of two (HdrHistogram's layout
// with 7 sub-bucket bits): values below 256 are kept exactly, larger ones in a bucket no wider
// than 1/128 of its lower bound. percentile() returns the middle of the bucket that holds the
// nearest-rank percentile, clamped to [min, max]: within 1/256 of the exact value (and exact
// below 256). min() and max() are exact, and so are the percentiles whose rank is the first or
// the last value.
//
// About 60 KiB, allocated once by the constructor; record() never allocates. Not thread-safe: one
// per worker thread, merged with merge() at the end.
class LatencyHistogram {
 public:
  LatencyHistogram();

  void record(uint64_t value);
  void merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  // The smallest value v such that at least ceil(p / 100 * count) values are <= v (p in
  // (0, 100]), to within the error above; 0 when empty.
  uint64_t percentile(double p) const;

  static constexpr int kSubBucketBits = 7;

 private:
  static size_t index_of(uint64_t value);
  static uint64_t lower_bound_of(size_t index);
  static uint64_t width_of(size_t index);

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace ingestd::loadgen

// aggregate/window: DDSketch, a mergeable quantile sketch with relative-error guarantees.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace ingestd::plugins {
namespace detail {

// Counts per bucket key over one contiguous range of keys, held densely in a vector. Once that
// range would span more than max_buckets keys, the lowest keys fold into the lowest key kept (the
// floor); every later key below the floor lands on the floor too. The floor only rises, so the
// values it holds are always the lowest ones the store was given. Keys are int32 bucket indices.
class CollapsingLowestStore {
 public:
  static constexpr int32_t kNoFloor = std::numeric_limits<int32_t>::min();

  explicit CollapsingLowestStore(size_t max_buckets) : max_buckets_(max_buckets) {}

  // Allocates only when the range of keys grows past the storage.
  void add(int32_t key, uint64_t count);
  void merge(const CollapsingLowestStore& other);
  // Folds every key below `floor` into it from now on (the floor never moves down).
  void collapse_below(int32_t floor);

  uint64_t total() const { return total_; }
  bool empty() const { return total_ == 0; }
  int32_t lowest() const { return lo_; }   // valid when !empty()
  int32_t highest() const { return hi_; }  // valid when !empty()
  uint64_t at(int32_t key) const {
    const int64_t i = int64_t{key} - offset_;
    return i < 0 || i >= static_cast<int64_t>(counts_.size()) ? 0 : counts_[static_cast<size_t>(i)];
  }
  bool collapsed() const { return floor_ != kNoFloor; }
  // How many values share the floor bucket (0 when nothing collapsed): the lowest values, some
  // of which are not in their own bucket.
  uint64_t collapsed_count() const { return collapsed() ? at(floor_) : 0; }
  size_t bytes() const { return counts_.capacity() * sizeof(uint64_t); }

 private:
  // Makes the storage cover the non-empty range together with [lo, hi] (a span of at most
  // max_buckets_ keys).
  void cover(int32_t lo, int32_t hi);

  size_t max_buckets_;
  std::vector<uint64_t> counts_;  // counts_[i] is the count of key offset_ + i
  int32_t offset_ = 0;
  int32_t lo_ = 0;  // lowest and highest non-empty keys, when total_ > 0
  int32_t hi_ = 0;
  int32_t floor_ = kNoFloor;
  uint64_t total_ = 0;
};

}  // namespace detail

// Estimates quantiles of a stream of doubles within a relative error alpha (Masson, Rim, Lee:
// "DDSketch", VLDB 2019): every estimate v' of a true value v satisfies |v' - v| <= alpha * |v|.
//
// Buckets: gamma = (1 + alpha) / (1 - alpha); a positive x falls in bucket i = ceil(log_gamma(x)),
// which holds (gamma^(i-1), gamma^i] and is represented by 2 * gamma^i / (gamma + 1). A negative x
// is counted the same way by |x| in a separate store. |x| < kMinIndexable (the smallest normal
// double, 2.2e-308) counts as zero and is estimated as 0 (clamped to [min(), max()]).
//
// Quantiles: quantile(q) estimates the value of rank floor(q * (n - 1)) (0-based) of the n values
// added, sorted ascending: the lower of the two neighbours, never an interpolation. quantile(0)
// and quantile(1) are the exact min() and max(); every estimate lies within [min(), max()]. An
// empty sketch, a NaN q or one outside [0, 1] gives NaN, as do min() and max() of an empty sketch.
//
// Non-finite input: add() refuses NaN and +-inf and returns false (the caller counts them); the
// sketch is unchanged.
//
// Memory: 8 bytes per bucket, each store holding at most max_buckets (default 2048) buckets:
// about log(max/min) / log(gamma) buckets for values from min to max (1 ns .. 1 h at alpha =
// 1 %: about 1,400). When a store's range would exceed max_buckets, its lowest buckets collapse
// into one: the guarantee then holds for every quantile whose rank does not fall among the
// collapsed values, which are the smallest positive values and the most negative ones (for
// data of one sign: every q with floor(q * (n - 1)) >= collapsed_count()); among them an
// estimate can be too high, but never more than alpha too low. add() allocates only when a store's
// range grows.
//
// Mergeable: merge() of sketches with the same alpha and max_buckets gives the same buckets as
// one sketch of all values, so the same quantiles, whatever the order of adds and merges. (With a
// different max_buckets the result keeps this sketch's cap and the collapses of both.)
//
// Checkpoints: snapshot() exposes alpha, the buckets, counts and extremes; restore() rebuilds
// the sketch and refuses an inconsistent snapshot.
//
// Contract: the constructor throws std::invalid_argument unless valid_alpha(alpha) and
// valid_max_buckets(max_buckets), and merge() when the alphas differ (programming errors: option
// validation checks first). Not thread-safe; a sketch is owned by one window's group.
class DDSketch {
 public:
  static constexpr double kDefaultAlpha = 0.01;
  static constexpr size_t kDefaultMaxBuckets = 2048;
  static constexpr double kMinAlpha = 1e-6;  // bucket indices of all doubles fit in int32
  static constexpr double kMaxAlpha = 0.5;
  static constexpr size_t kBucketLimit = size_t{1} << 24;  // 128 MiB per store
  // |x| below this counts as zero: the smallest normal double.
  static constexpr double kMinIndexable = std::numeric_limits<double>::min();

  static constexpr bool valid_alpha(double alpha) {
    return alpha >= kMinAlpha && alpha <= kMaxAlpha;
  }
  static constexpr bool valid_max_buckets(size_t max_buckets) {
    return max_buckets >= 1 && max_buckets <= kBucketLimit;
  }

  explicit DDSketch(double alpha = kDefaultAlpha, size_t max_buckets = kDefaultMaxBuckets);

  // False (and nothing counted) for NaN and +-inf.
  bool add(double x);
  void merge(const DDSketch& other);

  double quantile(double q) const;
  uint64_t count() const { return count_; }
  double min() const;
  double max() const;

  double alpha() const { return alpha_; }
  size_t max_buckets() const { return max_buckets_; }
  // Values that share a collapsed bucket (see Memory above); 0 while nothing collapsed.
  uint64_t collapsed_count() const {
    return positive_.collapsed_count() + negative_.collapsed_count();
  }
  size_t bytes() const { return sizeof(*this) + positive_.bytes() + negative_.bytes(); }

  // Everything a checkpoint needs. Bucket indices are those of |x| (see above) for both stores,
  // ascending, counts non-zero. A collapsed store's collapsed bucket is its lowest bucket for
  // `positive` and its highest for `negative` (the most negative values).
  struct Bucket {
    int32_t index;
    uint64_t count;
    friend bool operator==(const Bucket&, const Bucket&) = default;
  };
  struct Snapshot {
    double alpha = kDefaultAlpha;
    std::vector<Bucket> positive;
    bool positive_collapsed = false;
    std::vector<Bucket> negative;
    bool negative_collapsed = false;
    uint64_t zero_count = 0;
    uint64_t count = 0;  // sum of all bucket counts and zero_count
    double min = 0;      // ignored when count is 0
    double max = 0;
    friend bool operator==(const Snapshot&, const Snapshot&) = default;
  };
  Snapshot snapshot() const;
  // Nullopt when the alpha or max_buckets is invalid, indices are out of range or not
  // ascending, a count is 0, the counts do not add up to `count`, a collapsed store is empty, or
  // min/max are not finite and ordered. A smaller max_buckets than the snapshot was taken with
  // collapses on the way in.
  static std::optional<DDSketch> restore(const Snapshot& snapshot,
                                         size_t max_buckets = kDefaultMaxBuckets);

 private:
  int32_t index_of(double magnitude) const;
  double value_of(int32_t index) const;

  double alpha_;
  size_t max_buckets_;
  double log_gamma_;
  double inverse_log_gamma_;
  double log_representative_factor_;  // log(2 / (gamma + 1))
  // The positive store keys a value by its index; the negative store by minus the index of |x|,
  // so that in both the lowest key is the lowest value and collapsing the lowest keys keeps the
  // upper quantiles.
  detail::CollapsingLowestStore positive_;
  detail::CollapsingLowestStore negative_;
  uint64_t zero_count_ = 0;
  uint64_t count_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

}  // namespace ingestd::plugins

#include "aggregate/window/ddsketch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ingestd::plugins {
namespace detail {
namespace {

// The first storage a store allocates, in buckets: about 40 % of range at alpha = 1 %.
constexpr int64_t kInitialBuckets = 32;

}  // namespace

void CollapsingLowestStore::add(int32_t key, uint64_t count) {
  if (count == 0) return;
  const auto max_buckets = static_cast<int64_t>(max_buckets_);
  if (total_ > 0) {
    const int64_t lo = std::min(lo_, key);
    const int64_t hi = std::max(hi_, key);
    if (hi - lo + 1 > max_buckets) collapse_below(static_cast<int32_t>(hi - max_buckets + 1));
  }
  key = std::max(key, floor_);
  if (total_ == 0) {
    cover(key, key);
    lo_ = hi_ = key;
  } else if (key < lo_ || key > hi_) {
    cover(std::min(lo_, key), std::max(hi_, key));
    lo_ = std::min(lo_, key);
    hi_ = std::max(hi_, key);
  }
  counts_[static_cast<size_t>(key - offset_)] += count;
  total_ += count;
}

void CollapsingLowestStore::collapse_below(int32_t floor) {
  if (floor <= floor_) return;
  floor_ = floor;
  if (total_ == 0 || lo_ >= floor) return;
  uint64_t folded = 0;
  const int32_t last = std::min(hi_, floor - 1);
  for (int32_t key = lo_; key <= last; ++key) {
    uint64_t& c = counts_[static_cast<size_t>(key - offset_)];
    folded += c;
    c = 0;
  }
  lo_ = floor;
  hi_ = std::max(hi_, floor);
  cover(lo_, hi_);
  counts_[static_cast<size_t>(floor - offset_)] += folded;
}

void CollapsingLowestStore::merge(const CollapsingLowestStore& other) {
  if (other.collapsed()) collapse_below(other.floor_);
  if (other.empty()) return;
  // Highest first: the first add sets the top of the range, so lower keys either fit below it
  // or fold into the floor, and the storage moves at most once.
  for (int32_t key = other.hi_; key >= other.lo_; --key) add(key, other.at(key));
}

void CollapsingLowestStore::cover(int32_t lo, int32_t hi) {
  const auto size = static_cast<int64_t>(counts_.size());
  if (size > 0 && lo >= offset_ && int64_t{hi} < offset_ + size) return;
  const int64_t need = int64_t{hi} - lo + 1;
  int64_t len = size;
  if (need > len) {
    const int64_t grown =
        std::min(static_cast<int64_t>(max_buckets_), std::max(2 * size, kInitialBuckets));
    len = std::max(need, grown);
  }
  // Leave the spare room on the side the range is growing towards: above for a new store or
  // one growing upwards, below for one growing downwards.
  const int64_t new_offset = size > 0 && lo < offset_ ? int64_t{hi} - len + 1 : int64_t{lo};

  // Only the non-empty keys inside both the old and the new storage move.
  int64_t from = offset_;
  int64_t to = offset_ + size - 1;
  if (total_ > 0) {
    from = std::max<int64_t>(from, lo_);
    to = std::min<int64_t>(to, hi_);
  }
  from = std::max(from, new_offset);
  to = std::min(to, new_offset + len - 1);

  if (len > size) {
    std::vector<uint64_t> next(static_cast<size_t>(len), 0);
    for (int64_t key = from; key <= to; ++key) {
      next[static_cast<size_t>(key - new_offset)] = counts_[static_cast<size_t>(key - offset_)];
    }
    counts_.swap(next);
  } else {
    // Same length: shift in place, without allocating.
    if (from <= to) {
      std::memmove(&counts_[static_cast<size_t>(from - new_offset)],
                   &counts_[static_cast<size_t>(from - offset_)],
                   static_cast<size_t>(to - from + 1) * sizeof(uint64_t));
    }
    for (int64_t i = 0; i < len; ++i) {
      const int64_t key = new_offset + i;
      if (key < from || key > to) counts_[static_cast<size_t>(i)] = 0;
    }
  }
  offset_ = static_cast<int32_t>(new_offset);
}

}  // namespace detail

namespace {

double nan() {
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

DDSketch::DDSketch(double alpha, size_t max_buckets)
    : alpha_(alpha),
      max_buckets_(max_buckets),
      // log(gamma) = log(1 + 2 alpha / (1 - alpha)), without the rounding of gamma itself.
      log_gamma_(std::log1p(2 * alpha / (1 - alpha))),
      inverse_log_gamma_(1 / log_gamma_),
      log_representative_factor_(std::log(2 / (1 + std::exp(log_gamma_)))),
      positive_(max_buckets),
      negative_(max_buckets) {
  if (!valid_alpha(alpha)) {
    throw std::invalid_argument("DDSketch: relative accuracy " + std::to_string(alpha) +
                                " is outside [" + std::to_string(kMinAlpha) + ", " +
                                std::to_string(kMaxAlpha) + "]");
  }
  if (!valid_max_buckets(max_buckets)) {
    throw std::invalid_argument("DDSketch: max_buckets " + std::to_string(max_buckets) +
                                " is outside [1, " + std::to_string(kBucketLimit) + "]");
  }
}

int32_t DDSketch::index_of(double magnitude) const {
  return static_cast<int32_t>(std::ceil(std::log(magnitude) * inverse_log_gamma_));
}

double DDSketch::value_of(int32_t index) const {
  return std::exp(index * log_gamma_ + log_representative_factor_);
}

bool DDSketch::add(double x) {
  if (!std::isfinite(x)) return false;
  const double magnitude = std::abs(x);
  if (magnitude < kMinIndexable) {
    ++zero_count_;
  } else if (x > 0) {
    positive_.add(index_of(magnitude), 1);
  } else {
    negative_.add(-index_of(magnitude), 1);
  }
  ++count_;
  min_ = std::min(min_, x);
  max_ = std::max(max_, x);
  return true;
}

void DDSketch::merge(const DDSketch& other) {
  if (other.alpha_ != alpha_) {
    throw std::invalid_argument("DDSketch::merge: relative accuracy " +
                                std::to_string(other.alpha_) + " into a sketch of " +
                                std::to_string(alpha_));
  }
  if (&other == this) {
    const DDSketch copy = other;
    merge(copy);
    return;
  }
  positive_.merge(other.positive_);
  negative_.merge(other.negative_);
  zero_count_ += other.zero_count_;
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

double DDSketch::min() const {
  return count_ == 0 ? nan() : min_;
}

double DDSketch::max() const {
  return count_ == 0 ? nan() : max_;
}

double DDSketch::quantile(double q) const {
  if (count_ == 0 || !(q >= 0 && q <= 1)) return nan();
  if (q == 0) return min_;
  if (q == 1) return max_;
  const auto rank = static_cast<uint64_t>(q * static_cast<double>(count_ - 1));
  const auto clamp = [&](double v) { return std::clamp(v, min_, max_); };

  // Ascending value order: negative keys ascending (most negative first), zero, positive keys.
  uint64_t seen = 0;
  if (rank < negative_.total()) {
    for (int32_t key = negative_.lowest();; ++key) {
      seen += negative_.at(key);
      if (seen > rank) return clamp(-value_of(-key));
    }
  }
  seen = negative_.total() + zero_count_;
  if (rank < seen) return clamp(0.0);
  for (int32_t key = positive_.lowest();; ++key) {
    seen += positive_.at(key);
    if (seen > rank) return clamp(value_of(key));
  }
}

DDSketch::Snapshot DDSketch::snapshot() const {
  Snapshot s;
  s.alpha = alpha_;
  if (!positive_.empty()) {
    for (int32_t key = positive_.lowest(); key <= positive_.highest(); ++key) {
      if (const uint64_t c = positive_.at(key)) s.positive.push_back({key, c});
    }
  }
  s.positive_collapsed = positive_.collapsed();
  if (!negative_.empty()) {
    for (int32_t key = negative_.highest(); key >= negative_.lowest(); --key) {
      if (const uint64_t c = negative_.at(key)) s.negative.push_back({-key, c});
    }
  }
  s.negative_collapsed = negative_.collapsed();
  s.zero_count = zero_count_;
  s.count = count_;
  if (count_ > 0) {
    s.min = min_;
    s.max = max_;
  }
  return s;
}

std::optional<DDSketch> DDSketch::restore(const Snapshot& s, size_t max_buckets) {
  if (!valid_alpha(s.alpha) || !valid_max_buckets(max_buckets)) return std::nullopt;
  DDSketch sketch(s.alpha, max_buckets);
  const int32_t lowest_index = sketch.index_of(kMinIndexable);
  const int32_t highest_index = sketch.index_of(std::numeric_limits<double>::max());
  uint64_t total = s.zero_count;
  const auto valid = [&](const std::vector<Bucket>& buckets, bool collapsed) {
    if (collapsed && buckets.empty()) return false;
    for (size_t i = 0; i < buckets.size(); ++i) {
      const Bucket& b = buckets[i];
      if (b.index < lowest_index || b.index > highest_index || b.count == 0) return false;
      if (i > 0 && b.index <= buckets[i - 1].index) return false;
      if (__builtin_add_overflow(total, b.count, &total)) return false;
    }
    return true;
  };
  if (!valid(s.positive, s.positive_collapsed) || !valid(s.negative, s.negative_collapsed) ||
      total != s.count) {
    return std::nullopt;
  }
  if (s.count > 0 && !(std::isfinite(s.min) && std::isfinite(s.max) && s.min <= s.max)) {
    return std::nullopt;
  }

  if (s.positive_collapsed) sketch.positive_.collapse_below(s.positive.front().index);
  for (const Bucket& b : s.positive) sketch.positive_.add(b.index, b.count);
  if (s.negative_collapsed) sketch.negative_.collapse_below(-s.negative.back().index);
  for (const Bucket& b : s.negative) sketch.negative_.add(-b.index, b.count);
  sketch.zero_count_ = s.zero_count;
  sketch.count_ = s.count;
  if (s.count > 0) {
    sketch.min_ = s.min;
    sketch.max_ = s.max;
  }
  return sketch;
}

}  // namespace ingestd::plugins

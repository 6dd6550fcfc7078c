// aggregate/window: HyperLogLog, a mergeable distinct-count sketch of fixed size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace ingestd::plugins {

// Estimates the number of distinct values added, in 2^p one-byte registers (Flajolet, Fusy,
// Gandouet, Meunier 2007), with a 64-bit hash (XXH3) as in HLL++ (Heule, Nunkesser, Hall 2013).
//
// Accuracy: the standard error of estimate() is 1.04 / sqrt(2^p): 3.25 % at p = 10 (1 KiB),
// 0.81 % at p = 14 (16 KiB), 0.41 % at p = 16 (64 KiB). Small counts use linear counting (while
// the raw estimate is <= 2.5 * 2^p and a register is still zero), which is exact for 0 and
// within +-1 for the first few values. HLL++'s empirical bias correction is not applied, so just
// past the switch to the raw estimate the estimate leans high, whatever p is: by about 2.5 % at
// 2.5 * 2^p distinct values, 1 % at 3 * 2^p and under 0.5 % from 3.5 * 2^p on (3 standard errors
// at p = 14); hyperloglog_test.cc measures and prints it. A 64-bit hash needs no large-range
// correction.
//
// Memory: bytes() is 2^p plus the object itself; it never changes after construction.
//
// Mergeable: merge() of two sketches of the same precision gives exactly the sketch of the union
// of their inputs, whatever the order of adds and merges.
//
// Checkpoints: save precision() and the bytes of registers(); restore() rebuilds the sketch and
// refuses data that no sketch could have produced.
//
// Contract: the constructor and merge() throw std::invalid_argument for an invalid precision or
// a precision mismatch (programming errors: option validation checks valid_precision() first).
// Not thread-safe; a sketch is owned by one window's group.
class HyperLogLog {
 public:
  static constexpr int kMinPrecision = 4;
  static constexpr int kMaxPrecision = 18;
  static constexpr int kDefaultPrecision = 14;

  static constexpr bool valid_precision(int precision) {
    return precision >= kMinPrecision && precision <= kMaxPrecision;
  }

  explicit HyperLogLog(int precision = kDefaultPrecision);

  // Nullopt when the precision is invalid, the register count is not 2^precision or a register
  // holds a rank above 65 - precision.
  static std::optional<HyperLogLog> restore(int precision, std::span<const uint8_t> registers);

  // Hashes the value with XXH3_64bits: add(v) is add_hash(XXH3_64bits(v)).
  void add(std::string_view value);
  // For callers that already hold a well-mixed 64-bit hash of the value.
  void add_hash(uint64_t hash);

  uint64_t estimate() const;

  // Registers become the maximum of both: the sketch of the union of both inputs.
  void merge(const HyperLogLog& other);

  int precision() const { return precision_; }
  std::span<const uint8_t> registers() const { return registers_; }
  size_t bytes() const { return sizeof(*this) + registers_.capacity(); }

  friend bool operator==(const HyperLogLog&, const HyperLogLog&) = default;

 private:
  int precision_;
  std::vector<uint8_t> registers_;
};

}  // namespace ingestd::plugins

#include "aggregate/window/hyperloglog.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <stdexcept>
#include <string>

#include "xxhash.h"

namespace ingestd::plugins {
namespace {

// The bias constant alpha_m of the raw estimate alpha_m * m^2 / sum(2^-register).
double alpha(size_t m) {
  switch (m) {
    case 16:
      return 0.673;
    case 32:
      return 0.697;
    case 64:
      return 0.709;
    default:
      return 0.7213 / (1.0 + 1.079 / static_cast<double>(m));
  }
}

// 2^-r for every rank a register can hold: estimate() sums one per register, and a table lookup
// is an order of magnitude faster than std::ldexp.
constexpr auto kInversePowers = [] {
  std::array<double, 66> powers{};
  double p = 1;
  for (double& v : powers) {
    v = p;
    p /= 2;
  }
  return powers;
}();

}  // namespace

HyperLogLog::HyperLogLog(int precision) : precision_(precision) {
  if (!valid_precision(precision)) {
    throw std::invalid_argument("HyperLogLog: precision " + std::to_string(precision) +
                                " is outside [" + std::to_string(kMinPrecision) + ", " +
                                std::to_string(kMaxPrecision) + "]");
  }
  registers_.assign(size_t{1} << precision, 0);
}

std::optional<HyperLogLog> HyperLogLog::restore(int precision, std::span<const uint8_t> registers) {
  if (!valid_precision(precision) || registers.size() != size_t{1} << precision) {
    return std::nullopt;
  }
  const int max_rank = 64 - precision + 1;
  if (std::any_of(registers.begin(), registers.end(), [&](uint8_t r) { return r > max_rank; })) {
    return std::nullopt;
  }
  HyperLogLog sketch(precision);
  std::copy(registers.begin(), registers.end(), sketch.registers_.begin());
  return sketch;
}

void HyperLogLog::add(std::string_view value) {
  add_hash(XXH3_64bits(value.data(), value.size()));
}

void HyperLogLog::add_hash(uint64_t hash) {
  // The top p bits pick the register; the rank is the position of the first 1 bit in the rest
  // (64 - p + 1 when the rest is all zeros).
  const size_t index = hash >> (64 - precision_);
  const uint64_t rest = hash << precision_;
  const int rank = rest == 0 ? 64 - precision_ + 1 : std::countl_zero(rest) + 1;
  uint8_t& reg = registers_[index];
  reg = std::max(reg, static_cast<uint8_t>(rank));
}

uint64_t HyperLogLog::estimate() const {
  const size_t m = registers_.size();
  double inverse_sum = 0;
  size_t zeros = 0;
  for (uint8_t r : registers_) {
    inverse_sum += kInversePowers[r];
    zeros += r == 0;
  }
  const double md = static_cast<double>(m);
  const double raw = alpha(m) * md * md / inverse_sum;
  if (raw <= 2.5 * md && zeros != 0) {
    return static_cast<uint64_t>(std::llround(md * std::log(md / static_cast<double>(zeros))));
  }
  return static_cast<uint64_t>(std::llround(raw));
}

void HyperLogLog::merge(const HyperLogLog& other) {
  if (other.precision_ != precision_) {
    throw std::invalid_argument("HyperLogLog::merge: precision " +
                                std::to_string(other.precision_) + " into a sketch of precision " +
                                std::to_string(precision_));
  }
  for (size_t i = 0; i < registers_.size(); ++i) {
    registers_[i] = std::max(registers_[i], other.registers_[i]);
  }
}

}  // namespace ingestd::plugins

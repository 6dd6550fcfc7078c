// The line template of source/generator and the random numbers it draws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ingestd::plugins {

// xoshiro256** seeded through splitmix64: small, fast and deterministic for a given seed, which
// is all test data needs (not for cryptography). Not thread-safe; one per generator.
class GeneratorRng {
 public:
  explicit GeneratorRng(uint64_t seed);
  uint64_t next();
  uint64_t below(uint64_t bound);  // uniform in [0, bound), bound > 0, without modulo bias
  double unit();                   // uniform in [0, 1)

 private:
  uint64_t s_[4];
};

// A compiled template: literal text with placeholders, rendered once per event.
//
// Placeholders (spaces around the name and between arguments are ignored):
//   {{choice a,b,c}}     one of the comma-separated values, uniformly
//   {{int MIN MAX}}      an integer in [MIN, MAX]
//   {{float MIN MAX}}    a number in [MIN, MAX], printed with as many decimals as MIN or MAX
//                        is written with (3 when neither has any)
//   {{hex N}}            N random hex digits (1..4096)
//   {{seq}}              the event's number: 0, 1, 2, ...
//   {{now_s}} {{now_ms}} {{now_ns}}  the wall-clock time the batch was made, in epoch units
// compile() rejects unknown names and malformed arguments; render() never fails and does not
// allocate once `out` has grown to a line's size. Immutable after compile(): render() may run
// on several threads with their own GeneratorRng.
class GeneratorTemplate {
 public:
  // False with a message in `error` when `text` is not a valid template.
  bool compile(std::string_view text, std::string& error);
  void render(std::string& out, GeneratorRng& rng, uint64_t seq, int64_t now_ns) const;
  // Length of the literal text, a lower bound of a rendered line.
  size_t literal_size() const { return literal_size_; }

 private:
  enum class PartKind { kLiteral, kChoice, kInt, kFloat, kHex, kSeq, kNowS, kNowMs, kNowNs };
  struct Part {
    PartKind kind = PartKind::kLiteral;
    std::string text;                  // kLiteral
    std::vector<std::string> choices;  // kChoice
    int64_t min = 0;                   // kInt; kHex: the digit count in `max`
    int64_t max = 0;
    double min_d = 0;  // kFloat
    double max_d = 0;
    int decimals = 0;
  };

  bool compile_placeholder(std::string_view body, Part& part, std::string& error) const;

  std::vector<Part> parts_;
  size_t literal_size_ = 0;
};

}  // namespace ingestd::plugins

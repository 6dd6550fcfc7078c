#include "control/status_line.h"

#include <gtest/gtest.h>

namespace ingestd::control {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

config::Pipeline two_components() {
  config::Pipeline p;
  p.components.resize(3);
  p.components[0].name = "gen";
  p.components[0].kind = Kind::kSource;
  p.components[1].name = "json";
  p.components[1].kind = Kind::kParser;
  p.components[2].name = "out";
  p.components[2].kind = Kind::kSink;
  return p;
}

TEST(StatusLine, RatesAreSourcesOutAndSinksOutPerSecond) {
  auto p = two_components();
  StatusLine line;
  EXPECT_EQ(line.update("running", p, {{"gen.events_out", 100}, {"out.events_out", 50}}, 0, "none"),
            "running 3 components; in 0 ev/s, out 0 ev/s; last reload none");
  // 2 s later: 1000 more in, 400 more out; the parser's counters do not count.
  EXPECT_EQ(
      line.update("running", p,
                  {{"gen.events_out", 1100}, {"json.events_out", 9999}, {"out.events_out", 450}},
                  2 * kSecond, "ok"),
      "running 3 components; in 500 ev/s, out 200 ev/s; last reload ok");
}

TEST(StatusLine, CountersThatRestartGiveNoRateForThatInterval) {
  auto p = two_components();
  StatusLine line;
  line.update("running", p, {{"gen.events_out", 1000}, {"out.events_out", 1000}}, 0, "none");
  EXPECT_EQ(
      line.update("running", p, {{"gen.events_out", 10}, {"out.events_out", 5}}, kSecond, "ok"),
      "running 3 components; in 0 ev/s, out 0 ev/s; last reload ok");
}

}  // namespace
}  // namespace ingestd::control

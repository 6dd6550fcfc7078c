#include "schedule.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace ingestd::loadgen {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kStart = 5'000 * kMs;  // any monotonic origin

TEST(ScheduleTest, RateDueTimesAndCatchingUp) {
  Schedule s(1000, 0, 0, kStart);  // one request per ms, no limit
  auto c = s.claim(kStart);
  ASSERT_EQ(c.kind, Schedule::Claim::kGo);
  EXPECT_EQ(c.index, 0u);
  c = s.claim(kStart);
  ASSERT_EQ(c.kind, Schedule::Claim::kWait);
  EXPECT_EQ(c.wait_ns, kMs);
  c = s.claim(kStart + kMs / 4);
  ASSERT_EQ(c.kind, Schedule::Claim::kWait);
  EXPECT_EQ(c.wait_ns, 3 * kMs / 4);
  // 10 ms late: requests 1..10 are all due at once, then 11 waits for its time.
  for (uint64_t i = 1; i <= 10; ++i) {
    c = s.claim(kStart + 10 * kMs);
    ASSERT_EQ(c.kind, Schedule::Claim::kGo);
    EXPECT_EQ(c.index, i);
  }
  c = s.claim(kStart + 10 * kMs);
  EXPECT_EQ(c.kind, Schedule::Claim::kWait);
  EXPECT_EQ(c.wait_ns, kMs);
  EXPECT_EQ(s.claimed(), 11u);
}

TEST(ScheduleTest, NoRateMeansAllDueAndACountEndsIt) {
  Schedule s(0, 3, 0, kStart);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(s.claim(kStart).index, i);
  EXPECT_EQ(s.claim(kStart).kind, Schedule::Claim::kDone);
  EXPECT_EQ(s.claim(kStart + 1000 * kMs).kind, Schedule::Claim::kDone);
}

TEST(ScheduleTest, DurationEndsIt) {
  Schedule s(100, 0, 50 * kMs, kStart);  // every 10 ms for 50 ms: requests 0..4
  uint64_t go = 0;
  for (int64_t t = kStart; t < kStart + 200 * kMs; t += kMs) {
    auto c = s.claim(t);
    if (c.kind == Schedule::Claim::kGo) ++go;
    if (c.kind == Schedule::Claim::kDone) {
      // Once request 4 (due at 40 ms) is out, the next would be due at the end: done at once.
      EXPECT_EQ(t, kStart + 41 * kMs);
      break;
    }
  }
  EXPECT_EQ(go, 5u);
  // Without a rate the duration ends it too.
  Schedule fast(0, 0, 50 * kMs, kStart);
  EXPECT_EQ(fast.claim(kStart + 49 * kMs).kind, Schedule::Claim::kGo);
  EXPECT_EQ(fast.claim(kStart + 50 * kMs).kind, Schedule::Claim::kDone);
}

TEST(ScheduleTest, StopEndsIt) {
  Schedule s(0, 0, 0, kStart);
  EXPECT_EQ(s.claim(kStart).kind, Schedule::Claim::kGo);
  s.stop();
  EXPECT_EQ(s.claim(kStart).kind, Schedule::Claim::kDone);
}

TEST(ScheduleTest, ThreadsClaimEachNumberOnce) {
  Schedule s(0, 40'000, 0, kStart);
  std::vector<std::vector<uint64_t>> got(4);
  std::vector<std::thread> threads;
  for (auto& mine : got) {
    threads.emplace_back([&s, &mine] {
      while (true) {
        auto c = s.claim(kStart);
        if (c.kind != Schedule::Claim::kGo) break;
        mine.push_back(c.index);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> all;
  size_t n = 0;
  for (auto& mine : got) {
    all.insert(mine.begin(), mine.end());
    n += mine.size();
  }
  EXPECT_EQ(n, 40'000u);
  EXPECT_EQ(all.size(), 40'000u);
  EXPECT_EQ(*all.rbegin(), 39'999u);
}

}  // namespace
}  // namespace ingestd::loadgen

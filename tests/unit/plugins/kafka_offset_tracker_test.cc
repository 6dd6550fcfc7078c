#include <gtest/gtest.h>

#include "source/kafka/offset_tracker.h"

namespace ingestd::plugins {
namespace {

using Outcome = OffsetTracker::Outcome;

const TopicPartition kP0{"events", 0};
const TopicPartition kP1{"events", 1};

TEST(OffsetTracker, CommitsTheAcknowledgedPrefixOnly) {
  OffsetTracker t;
  t.assign(kP0);
  auto a = t.track(kP0, 0, 9);
  auto b = t.track(kP0, 10, 19);
  auto c = t.track(kP0, 20, 29);
  EXPECT_EQ(t.in_flight(kP0), 3u);
  EXPECT_EQ(t.committable(kP0), -1);
  EXPECT_TRUE(t.commits().empty());

  // Later batches first: nothing passes the unacknowledged first one.
  EXPECT_EQ(t.ack(c, true), Outcome::kOk);
  EXPECT_EQ(t.ack(b, true), Outcome::kOk);
  EXPECT_EQ(t.committable(kP0), -1);
  EXPECT_TRUE(t.commits().empty());
  EXPECT_EQ(t.in_flight(kP0), 1u);

  EXPECT_EQ(t.ack(a, true), Outcome::kOk);
  EXPECT_EQ(t.committable(kP0), 30);
  ASSERT_EQ(t.commits().size(), 1u);
  EXPECT_EQ(t.commits()[0].tp, kP0);
  EXPECT_EQ(t.commits()[0].offset, 30);
  EXPECT_EQ(t.in_flight(kP0), 0u);
}

TEST(OffsetTracker, AdvancesBatchByBatchAndOverOffsetGaps) {
  OffsetTracker t;
  t.assign(kP0);
  auto a = t.track(kP0, 100, 104);
  auto b = t.track(kP0, 110, 111);  // 105..109: compacted away or transaction markers
  t.ack(a, true);
  EXPECT_EQ(t.committable(kP0), 105);
  t.ack(b, true);
  EXPECT_EQ(t.committable(kP0), 112);
}

TEST(OffsetTracker, SentOffsetsAreNotListedAgainUntilTheyAdvanceOrFail) {
  OffsetTracker t;
  t.assign(kP0);
  t.ack(t.track(kP0, 0, 4), true);
  ASSERT_EQ(t.commits().size(), 1u);
  t.sent(kP0, 5);
  EXPECT_TRUE(t.commits().empty());
  t.ack(t.track(kP0, 5, 9), true);
  ASSERT_EQ(t.commits().size(), 1u);
  EXPECT_EQ(t.commits()[0].offset, 10);
  t.sent(kP0, 10);
  t.commit_failed(kP0, 10);
  ASSERT_EQ(t.commits().size(), 1u) << "a failed commit is sent again";
  EXPECT_EQ(t.commits()[0].offset, 10);
  // A failure of an older commit does not resend what a newer one covers.
  t.sent(kP0, 10);
  t.commit_failed(kP0, 5);
  EXPECT_TRUE(t.commits().empty());
}

TEST(OffsetTracker, AFailedBatchBlocksThePartitionAtItsStart) {
  OffsetTracker t;
  t.assign(kP0);
  t.assign(kP1);
  auto a = t.track(kP0, 0, 9);
  auto b = t.track(kP0, 10, 19);
  auto c = t.track(kP0, 20, 29);
  auto other = t.track(kP1, 0, 9);
  EXPECT_EQ(t.ack(b, false), Outcome::kFailed);
  EXPECT_FALSE(t.blocked(kP0)) << "not before the earlier batch settles";
  EXPECT_EQ(t.ack(c, true), Outcome::kOk);
  EXPECT_EQ(t.ack(a, true), Outcome::kOk);
  EXPECT_EQ(t.committable(kP0), 10) << "the batch before the failed one still commits";
  EXPECT_TRUE(t.blocked(kP0));
  EXPECT_EQ(t.in_flight(kP0), 0u);
  // Nothing later ever passes it.
  t.ack(t.track(kP0, 30, 39), true);
  EXPECT_EQ(t.committable(kP0), 10);
  // Other partitions are not affected.
  t.ack(other, true);
  EXPECT_EQ(t.committable(kP1), 10);
  EXPECT_FALSE(t.blocked(kP1));
}

TEST(OffsetTracker, AFailedFirstBatchCommitsNothing) {
  OffsetTracker t;
  t.assign(kP0);
  auto a = t.track(kP0, 0, 9);
  auto b = t.track(kP0, 10, 19);
  t.ack(b, true);
  t.ack(a, false);
  EXPECT_TRUE(t.blocked(kP0));
  EXPECT_EQ(t.committable(kP0), -1);
  EXPECT_TRUE(t.commits().empty());
}

TEST(OffsetTracker, RevokeMakesTicketsStaleAndReassignStartsAfresh) {
  OffsetTracker t;
  t.assign(kP0);
  auto a = t.track(kP0, 0, 9);
  auto b = t.track(kP0, 10, 19);
  t.ack(a, true);
  EXPECT_EQ(t.commits(std::vector<TopicPartition>{kP0}).size(), 1u);
  t.revoke(kP0);
  EXPECT_FALSE(t.assigned(kP0));
  EXPECT_EQ(t.in_flight(kP0), 0u);
  EXPECT_EQ(t.ack(b, true), Outcome::kStale);

  // Assigned again (a rebalance gave it back): the old ticket changes nothing.
  t.assign(kP0);
  auto c = t.track(kP0, 10, 14);
  EXPECT_EQ(t.ack(b, false), Outcome::kStale);
  EXPECT_FALSE(t.blocked(kP0));
  EXPECT_EQ(t.ack(c, true), Outcome::kOk);
  EXPECT_EQ(t.committable(kP0), 15);
}

TEST(OffsetTracker, CommitsOfSomePartitionsAndDoubleAcks) {
  OffsetTracker t;
  t.assign(kP0);
  t.assign(kP1);
  auto a = t.track(kP0, 0, 0);
  t.ack(a, true);
  t.ack(t.track(kP1, 5, 6), true);
  EXPECT_EQ(t.commits().size(), 2u);
  auto only = t.commits(std::vector<TopicPartition>{kP1});
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].tp, kP1);
  EXPECT_EQ(only[0].offset, 7);
  EXPECT_EQ(t.ack(a, true), Outcome::kStale) << "settled twice";
  EXPECT_EQ(t.in_flight(), 0u);
  EXPECT_EQ(t.partitions().size(), 2u);
}

}  // namespace
}  // namespace ingestd::plugins

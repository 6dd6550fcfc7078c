#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "ingestd/component.h"
#include "ingestd/event.h"

namespace ingestd {
namespace {

// Records the verdict of one acknowledgement and how often it came.
struct Probe {
  int calls = 0;
  std::optional<bool> ok;
  AckRef make() {
    return AckRef::make([this](bool success) {
      ++calls;
      ok = success;
    });
  }
};

TEST(Ack, AllHoldersOkGiveOkOnceTheLastResolves) {
  Probe probe;
  AckRef first = probe.make();
  AckRef second = first.share();
  AckRef third = second.share();
  first.ok();
  third.ok();
  EXPECT_EQ(probe.calls, 0);
  second.ok();
  EXPECT_EQ(probe.calls, 1);
  EXPECT_EQ(probe.ok, true);
  second.ok();  // resolved already: nothing
  EXPECT_EQ(probe.calls, 1);
}

TEST(Ack, OneHolderThatFailsFailsTheAck) {
  Probe probe;
  AckRef first = probe.make();
  AckRef second = first.share();
  second.fail();
  EXPECT_EQ(probe.calls, 0);
  first.ok();
  EXPECT_EQ(probe.calls, 1);
  EXPECT_EQ(probe.ok, false);
}

TEST(Ack, AHolderDroppedWithoutAVerdictFailsTheAckAndIsCounted) {
  Probe probe;
  Counter unresolved;
  AckRef kept = probe.make();
  {
    AckRef dropped = kept.share();
    dropped.attribute(&unresolved);
  }
  EXPECT_EQ(unresolved.value(), 1u);
  kept.ok();
  EXPECT_EQ(probe.ok, false);
  // A ref assigned over while it holds is dropped the same way.
  Probe other;
  Counter counted;
  AckRef ref = other.make();
  ref.attribute(&counted);
  ref = AckRef();
  EXPECT_EQ(counted.value(), 1u);
  EXPECT_EQ(other.ok, false);
}

TEST(Ack, AMovedRefHandsOverItsPartAndAnEmptyOneDoesNothing) {
  Probe probe;
  Counter unresolved;
  AckRef a = probe.make();
  a.attribute(&unresolved);
  AckRef b = std::move(a);
  EXPECT_FALSE(a.holds());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  a.fail();
  AckRef empty;
  empty.ok();
  EXPECT_FALSE(empty.share().holds());
  EXPECT_EQ(probe.calls, 0);
  b.ok();
  EXPECT_EQ(probe.ok, true);
  EXPECT_EQ(unresolved.value(), 0u);
}

TEST(Ack, ABatchCloneIsOneHolderMoreAndADestroyedBatchFailsItsRefs) {
  Probe probe;
  Counter unresolved;
  auto batch = std::make_unique<Batch>();
  batch->add({}, 1);
  batch->acks.push_back(probe.make());
  batch->attribute_acks(&unresolved);
  BatchPtr copy = batch->clone();
  ASSERT_EQ(copy->acks.size(), 1u);
  batch->resolve_acks(true);
  EXPECT_TRUE(batch->acks.empty());
  EXPECT_EQ(probe.calls, 0);  // the copy still holds
  copy.reset();               // lost without a verdict: failed, counted where it was attributed
  EXPECT_EQ(probe.calls, 1);
  EXPECT_EQ(probe.ok, false);
  EXPECT_EQ(unresolved.value(), 1u);
}

}  // namespace
}  // namespace ingestd

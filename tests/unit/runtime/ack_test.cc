#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
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

// A batch of one event holding one ref of probe's, attributed to `unresolved`.
BatchPtr one_event_holding(Probe& probe, Counter& unresolved) {
  auto batch = std::make_unique<Batch>();
  batch->add({}, 1);
  batch->acks.push_back(probe.make());
  batch->attribute_acks(&unresolved);
  return batch;
}

TEST(Ack, ABatchCloneIsOneHolderMoreAndADestroyedBatchFailsItsRefs) {
  Probe probe;
  Counter unresolved;
  BatchPtr batch = one_event_holding(probe, unresolved);
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

TEST(Ack, FanOutCopiesAreOneHolderEachAndTheAckWaitsForAll) {
  Probe probe;
  Counter unresolved;
  BatchPtr batch = one_event_holding(probe, unresolved);
  std::vector<BatchPtr> copies = Batch::fan_out(std::move(batch), 3);
  ASSERT_EQ(copies.size(), 3u);
  for (BatchPtr& c : copies) ASSERT_EQ(c->acks.size(), 1u);
  copies[0]->resolve_acks(true);
  copies[2]->resolve_acks(true);
  EXPECT_EQ(probe.calls, 0);  // the second copy still holds
  copies[1].reset();          // lost without a verdict: failed and counted
  EXPECT_EQ(probe.calls, 1);
  EXPECT_EQ(probe.ok, false);
  EXPECT_EQ(unresolved.value(), 1u);
}

TEST(Batch, FanOutCopiesShareBytesThatOutliveTheOthersAndChangeApart) {
  auto batch = std::make_unique<Batch>();
  for (int i = 0; i < 3; ++i) {
    Event& e = batch->add(batch->copy("{\"user\":\"u" + std::to_string(i) + "\"}"), i);
    batch->append_field(e, batch->copy("user"),
                        Value::string(batch->copy("u" + std::to_string(i))));
  }
  batch->origin.topic = "t";
  batch->ingest_time_ns = 42;
  const char* raw0 = batch->events()[0].raw.data();
  std::vector<BatchPtr> copies = Batch::fan_out(std::move(batch), 2);
  ASSERT_EQ(copies.size(), 2u);
  // The first consumer filters its copy and adds a field; the second sees the batch unchanged.
  copies[0]->retain([](const Event& e) { return e.time_ns != 1; });
  Event& last = copies[0]->events()[1];
  copies[0]->append_field(last, copies[0]->copy("extra"), Value::integer(7));
  BatchPtr second = std::move(copies[1]);
  copies.clear();  // the first copy is gone; the bytes stay for the second
  ASSERT_EQ(second->size(), 3u);
  EXPECT_EQ(second->events()[0].raw.data(), raw0);  // shared, not copied
  EXPECT_EQ(second->ingest_time_ns, 42);
  EXPECT_EQ(second->origin.topic, "t");
  for (int i = 0; i < 3; ++i) {
    const Event& e = second->events()[i];
    EXPECT_EQ(e.raw, "{\"user\":\"u" + std::to_string(i) + "\"}");
    ASSERT_EQ(second->fields(e).size(), 1u);
    const Value* v = second->find(e, "user");
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->s, "u" + std::to_string(i));
  }
  EXPECT_GE(second->bytes(), second->raw_bytes());
}

TEST(Batch, FanOutToOneIsTheBatchItself) {
  auto batch = std::make_unique<Batch>();
  Batch* p = batch.get();
  std::vector<BatchPtr> copies = Batch::fan_out(std::move(batch), 1);
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].get(), p);
}

// Raw records carry simdjson's padding; field bytes do not pay for it.
TEST(Batch, OnlyPaddedCopiesPayForThePadding) {
  Batch batch;
  const size_t before = batch.bytes();
  std::string_view raw = batch.copy("{\"a\":1}");
  EXPECT_EQ(batch.bytes() - before, raw.size() + Batch::kPadding);
  for (size_t i = 0; i < Batch::kPadding; ++i) EXPECT_EQ(raw.data()[raw.size() + i], '\0');
  const size_t middle = batch.bytes();
  std::string_view key = batch.copy_unpadded("device");
  char* value = batch.allocate_unpadded(4);
  std::memcpy(value, "xbox", 4);
  EXPECT_EQ(batch.bytes() - middle, 10u);
  EXPECT_EQ(key, "device");
  EXPECT_EQ(std::string_view(value, 4), "xbox");
  EXPECT_EQ(batch.copy_unpadded(""), "");
}

// same_text() compares lengths 0 to 16 with overlapping loads: a difference in any one byte, at
// any length, must show.
TEST(SameText, FindsADifferenceInAnyByteAtEveryLength) {
  for (size_t n = 0; n <= 40; ++n) {
    std::string a;
    for (size_t i = 0; i < n; ++i) a += static_cast<char>('a' + i % 26);
    EXPECT_TRUE(same_text(a, std::string(a))) << n;
    EXPECT_FALSE(same_text(a, a + "x")) << n;
    for (size_t i = 0; i < n; ++i) {
      std::string b = a;
      b[i] = static_cast<char>(b[i] ^ 0x20);
      EXPECT_FALSE(same_text(a, b)) << n << " " << i;
      b[i] = static_cast<char>(0x80 | b[i]);
      EXPECT_FALSE(same_text(a, b)) << n << " " << i;
    }
  }
}

// text_equals() must agree with append_text() for every type, without building the text.
TEST(Value, TextEqualsMatchesTheCanonicalTextOfEveryType) {
  struct Case {
    Value value;
    std::string text;  // what append_text() gives, written out here
  };
  const Case cases[] = {
      {Value::null(), "null"},          {Value::boolean(true), "true"},
      {Value::boolean(false), "false"}, {Value::integer(0), "0"},
      {Value::integer(-42), "-42"},     {Value::integer(INT64_MIN), "-9223372036854775808"},
      {Value::number(0.1), "0.1"},      {Value::number(-1.5e300), "-1.5e+300"},
      {Value::number(2.0), "2"},        {Value::string("null"), "null"},
      {Value::string(""), ""},          {Value::raw("{\"a\":1}"), "{\"a\":1}"},
  };
  for (const Case& c : cases) {
    std::string text;
    c.value.append_text(text);
    EXPECT_EQ(text, c.text);
    EXPECT_TRUE(c.value.text_equals(c.text)) << c.text;
    EXPECT_FALSE(c.value.text_equals(c.text + "0")) << c.text;
    EXPECT_FALSE(c.value.text_equals(c.text.substr(0, c.text.size() / 2) + "x")) << c.text;
  }
  EXPECT_FALSE(Value::integer(1).text_equals("1.0"));
  EXPECT_FALSE(Value::null().text_equals(""));
  EXPECT_FALSE(Value::boolean(true).text_equals("True"));
}

}  // namespace
}  // namespace ingestd

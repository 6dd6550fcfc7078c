// encode_batch()/decode_batch(): round trips, malformed input, and the checked-in v1 encoding.
#include "ingestd/batch_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "batch_testing.h"

namespace ingestd {
namespace {

using testing::expect_same_batch;

BatchPtr round_trip(const Batch& batch) {
  std::string bytes;
  encode_batch(batch, bytes);
  std::string error;
  BatchPtr out = decode_batch(bytes, error);
  EXPECT_NE(out, nullptr) << error;
  return out;
}

TEST(BatchCodec, RoundTripsEveryValueType) {
  Batch batch;
  batch.ingest_time_ns = -5;
  batch.origin.component = "kafka_in";
  Event& e = batch.add("{\"a\":1}", 1'700'000'000'000'000'000);
  batch.append_field(e, "n", Value::null());
  batch.append_field(e, "t", Value::boolean(true));
  batch.append_field(e, "f", Value::boolean(false));
  batch.append_field(e, "i", Value::integer(std::numeric_limits<int64_t>::min()));
  batch.append_field(e, "d", Value::number(-0.1));
  batch.append_field(e, "inf", Value::number(std::numeric_limits<double>::infinity()));
  batch.append_field(e, "s", Value::string("h\xc3\xa9llo"));
  batch.append_field(e, "r", Value::raw("[1,{\"b\":2}]"));
  batch.add("second, no fields", 7);
  BatchPtr out = round_trip(batch);
  ASSERT_NE(out, nullptr);
  expect_same_batch(*out, batch);

  Batch nan;
  nan.append_field(nan.add("", 0), "nan", Value::number(std::nan("")));
  BatchPtr nan_out = round_trip(nan);
  ASSERT_NE(nan_out, nullptr);
  EXPECT_TRUE(std::isnan(nan_out->fields(nan_out->events()[0])[0].value.d));
}

TEST(BatchCodec, RoundTripsAnEmptyBatch) {
  Batch batch;
  BatchPtr out = round_trip(batch);
  ASSERT_NE(out, nullptr);
  EXPECT_TRUE(out->empty());
  EXPECT_EQ(out->origin.component, "");
  EXPECT_FALSE(out->origin.topic || out->origin.partition || out->origin.offset || out->origin.key);
}

TEST(BatchCodec, AnEndOffsetNeedsVersion2AndOnlyThen) {
  Batch batch;
  batch.origin = {"kafka_in", "t", 3, 40, 45, "k"};
  batch.add("x", 1);
  std::string bytes;
  encode_batch(batch, bytes);
  EXPECT_EQ(bytes[0], 2);
  BatchPtr out = round_trip(batch);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->origin.topic, "t");
  EXPECT_EQ(out->origin.partition, 3);
  EXPECT_EQ(out->origin.offset, 40);
  EXPECT_EQ(out->origin.end_offset, 45);
  EXPECT_EQ(out->origin.key, "k");

  batch.origin.end_offset.reset();
  bytes.clear();
  encode_batch(batch, bytes);
  EXPECT_EQ(bytes[0], 1);  // an older build reads it
  out = round_trip(batch);
  ASSERT_NE(out, nullptr);
  EXPECT_FALSE(out->origin.end_offset);
}

TEST(BatchCodec, KeepsRawBytesWithNulAndInvalidUtf8) {
  Batch batch;
  std::string raw("a\0b\xff\xfe\xc3", 6);
  Event& e = batch.add(raw, 1);
  batch.append_field(e, std::string_view("k\0", 2), Value::string(raw));
  BatchPtr out = round_trip(batch);
  ASSERT_NE(out, nullptr);
  expect_same_batch(*out, batch);
  // Decoded views keep the batch's padding promise.
  std::string_view r = out->events()[0].raw;
  for (size_t i = 0; i < Batch::kPadding; ++i) EXPECT_EQ(r.data()[r.size() + i], '\0');
}

TEST(BatchCodec, RoundTripsOriginOptionalsSetAndUnset) {
  Batch all;
  all.origin = {.component = "k", .topic = "t", .partition = -1, .offset = 1LL << 40, .key = ""};
  BatchPtr out = round_trip(all);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->origin.topic, std::optional<std::string>("t"));
  EXPECT_EQ(out->origin.partition, std::optional<int32_t>(-1));
  EXPECT_EQ(out->origin.offset, std::optional<int64_t>(1LL << 40));
  EXPECT_EQ(out->origin.key, std::optional<std::string>(""));

  Batch some;
  some.origin = {.component = "k", .partition = 3};
  out = round_trip(some);
  ASSERT_NE(out, nullptr);
  EXPECT_FALSE(out->origin.topic.has_value());
  EXPECT_EQ(out->origin.partition, std::optional<int32_t>(3));
  EXPECT_FALSE(out->origin.offset.has_value());
  EXPECT_FALSE(out->origin.key.has_value());
}

TEST(BatchCodec, DoesNotEncodeAcks) {
  Batch batch;
  bool settled = false;
  batch.acks.push_back(AckRef::make([&](bool) { settled = true; }));
  BatchPtr out = round_trip(batch);
  ASSERT_NE(out, nullptr);
  EXPECT_TRUE(out->acks.empty());
  EXPECT_FALSE(settled);
}

TEST(BatchCodec, EveryTruncationIsAnError) {
  std::string bytes;
  encode_batch(*testing::sample_batch(), bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::string error;
    EXPECT_EQ(decode_batch(std::string_view(bytes).substr(0, n), error), nullptr) << n;
    EXPECT_FALSE(error.empty()) << n;
  }
}

TEST(BatchCodec, ReportsGarbledInput) {
  auto error_of = [](std::string bytes) {
    std::string error;
    EXPECT_EQ(decode_batch(bytes, error), nullptr);
    return error;
  };
  std::string good;
  encode_batch(*testing::sample_batch(), good);
  EXPECT_EQ(error_of(good + "x"),
            "1 bytes after the last event (at byte " + std::to_string(good.size()) + ")");
  std::string v9 = good;
  v9[0] = 9;
  EXPECT_EQ(error_of(v9), "unknown batch encoding version 9 (this build reads 1 to 2) (at byte 1)");
  using testing::from_hex;
  const std::string head = "01 0000000000000000 00 ";  // version, ingest time, component ""
  // A huge event count in an otherwise empty batch: refused before anything is reserved.
  EXPECT_EQ(error_of(from_hex(head + "00 ffffffff0f")),
            "event count 4294967295 is more than the 0 bytes left can hold (at byte 16)");
  EXPECT_EQ(error_of(from_hex(head + "10")), "unknown origin flags 0x10 (at byte 11)");  // v2 only
  EXPECT_EQ(error_of(from_hex("02 0000000000000000 00 20")),
            "unknown origin flags 0x20 (at byte 11)");
  // One event (time 0, raw ""), one field "" of type 7, or a bool of 2.
  const std::string event = head + "00 01 0000000000000000 00 01 00 ";
  EXPECT_EQ(error_of(from_hex(event + "07")), "unknown value type 7 (at byte 24)");
  EXPECT_EQ(error_of(from_hex(event + "01 02")), "bool value 2 is neither 0 nor 1 (at byte 25)");
  std::string overlong = from_hex("01 0000000000000000 ffffffffffffffffffffff");
  EXPECT_EQ(error_of(overlong), "origin component overflows 64 bits (at byte 19)");
}

// The encoding of testing::sample_batch() by version 1, as written by the first release. It must
// decode forever: spools written by an older daemon are replayed by a newer one.
constexpr char kVersion1Hex[] =
    "01 "                                 // version
    "d202964900000000 "                   // ingest_time_ns 1234567890
    "03737263 05 0174 2a00000000000000 "  // origin "src", present: topic, offset; "t", 42
    "02 "                                 // 2 events
    "ffffffffffffffff 037200ff 06 "       // time -1, raw "r\0\xff", 6 fields
    "016e 00 "                            //   n: null
    "0162 01 01 "                         //   b: true
    "0169 02 feffffffffffffff "           //   i: -2
    "0164 03 000000000000e03f "           //   d: 0.5
    "0173 04 0178 "                       //   s: "x"
    "0172 05 035b315d "                   //   r: [1]
    "0900000000000000 00 00";             // time 9, raw "", no fields

TEST(BatchCodec, AnOldVersionIsStillReadable) {
  std::string bytes = testing::from_hex(kVersion1Hex);
  std::string error;
  BatchPtr out = decode_batch(bytes, error);
  ASSERT_NE(out, nullptr) << error;
  expect_same_batch(*out, *testing::sample_batch());
}

}  // namespace
}  // namespace ingestd

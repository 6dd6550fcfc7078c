// Helpers for tests that encode, spool and compare batches.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "ingestd/event.h"

namespace ingestd::testing {

// A batch with every value type, origin optionals partly set, raw bytes with NUL and invalid
// UTF-8. Its v1 encoding is checked in (batch_codec_test.cc): never change it.
inline BatchPtr sample_batch() {
  auto b = std::make_unique<Batch>();
  b->ingest_time_ns = 1'234'567'890;
  b->origin.component = "src";
  b->origin.topic = "t";
  b->origin.offset = 42;
  Event& e = b->add(std::string_view("r\0\xff", 3), -1);
  b->append_field(e, "n", Value::null());
  b->append_field(e, "b", Value::boolean(true));
  b->append_field(e, "i", Value::integer(-2));
  b->append_field(e, "d", Value::number(0.5));
  b->append_field(e, "s", Value::string("x"));
  b->append_field(e, "r", Value::raw("[1]"));
  b->add("", 9);
  return b;
}

// A batch of `events` events "<tag>:<i>", each with one int field i.
inline BatchPtr numbered_batch(const std::string& tag, int events) {
  auto b = std::make_unique<Batch>();
  b->origin.component = tag;
  for (int i = 0; i < events; ++i) {
    Event& e = b->add(b->copy(tag + ":" + std::to_string(i)), i);
    b->append_field(e, "i", Value::integer(i));
  }
  return b;
}

inline void expect_same_value(const Value& a, const Value& b) {
  ASSERT_EQ(a.type, b.type);
  switch (a.type) {
    case Value::Type::kNull:
      break;
    case Value::Type::kBool:
      EXPECT_EQ(a.b, b.b);
      break;
    case Value::Type::kInt:
      EXPECT_EQ(a.i, b.i);
      break;
    case Value::Type::kDouble:
      EXPECT_EQ(std::memcmp(&a.d, &b.d, sizeof a.d), 0) << a.d << " vs " << b.d;
      break;
    case Value::Type::kString:
    case Value::Type::kRaw:
      EXPECT_EQ(a.s, b.s);
      break;
  }
}

// Equal content: ingest time, origin, events with their raw bytes, times and fields.
inline void expect_same_batch(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.ingest_time_ns, b.ingest_time_ns);
  EXPECT_EQ(a.origin.component, b.origin.component);
  EXPECT_EQ(a.origin.topic, b.origin.topic);
  EXPECT_EQ(a.origin.partition, b.origin.partition);
  EXPECT_EQ(a.origin.offset, b.origin.offset);
  EXPECT_EQ(a.origin.key, b.origin.key);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const Event& x = a.events()[i];
    const Event& y = b.events()[i];
    EXPECT_EQ(x.time_ns, y.time_ns);
    EXPECT_EQ(x.raw, y.raw);
    auto fx = a.fields(x);
    auto fy = b.fields(y);
    ASSERT_EQ(fx.size(), fy.size());
    for (size_t f = 0; f < fx.size(); ++f) {
      EXPECT_EQ(fx[f].key, fy[f].key);
      expect_same_value(fx[f].value, fy[f].value);
    }
  }
}

inline std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// Lower-case hex digits to bytes; spaces between bytes are skipped.
inline std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out;
  for (size_t i = 0; i + 1 < hex.size();) {
    if (hex[i] == ' ') {
      ++i;
      continue;
    }
    out.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
    i += 2;
  }
  return out;
}

}  // namespace ingestd::testing

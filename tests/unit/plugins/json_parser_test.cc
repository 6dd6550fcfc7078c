#include "parse/json/json_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "batch_lines.h"
#include "config/config.h"
#include "exact_fields.h"
#include "fake_context.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::add_lines;
using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::exact_fields;
using ingestd::testing::FakeContext;

constexpr ComponentDescriptor kDescriptor =
    describe<JsonParser>(Kind::kParser, "json", kJsonParserDoc, kJsonParserOptions);
constexpr int64_t kIngest = 1'600'000'000'123'000'000;

// 2018-01-08T21:02:34Z, computed with Python's datetime.
constexpr int64_t kSpsSeconds = 1'515'445'354;

class JsonParserBase : public ::testing::Test {
 protected:
  void make(std::string_view yaml) {
    std::vector<config::Error> errors;
    auto options = config::options_from_yaml(kDescriptor, yaml, errors);
    ASSERT_TRUE(options) << (errors.empty() ? "" : errors.front().to_string());
    parser_ = std::make_unique<JsonParser>(*options, diag_, flat_);
    ASSERT_TRUE(diag_.errors.empty());
    ASSERT_TRUE(parser_->start(ctx_));
  }

  BatchPtr batch(const std::vector<std::string>& lines) {
    auto b = std::make_unique<Batch>();
    b->ingest_time_ns = kIngest;
    if (!one_buffer_) {
      for (const std::string& line : lines) b->add(b->copy(line), 0);
      return b;
    }
    add_lines(*b, lines);
    return b;
  }

  // Parses the lines and checks that every line is counted exactly once.
  BatchPtr parse(const std::vector<std::string>& lines) {
    BatchPtr b = batch(lines);
    uint64_t before = total();
    parser_->parse(ctx_, *b);
    EXPECT_EQ(total() - before, lines.size());
    EXPECT_EQ(b->size(), ctx_.count("parsed") - parsed_before_);
    parsed_before_ = ctx_.count("parsed");
    return b;
  }

  uint64_t total() {
    return ctx_.count("parsed") + ctx_.count("errors") + ctx_.count("skipped") +
           ctx_.count("rejected");
  }

  // The one parsed event of a one-line input.
  BatchPtr parse_one(const std::string& line) {
    BatchPtr b = parse({line});
    EXPECT_EQ(b->size(), 1u) << line;
    return b;
  }

  FakeContext ctx_;
  CollectingDiagnostics diag_;
  std::unique_ptr<JsonParser> parser_;
  uint64_t parsed_before_ = 0;
  bool one_buffer_ = false;
  bool flat_ = true;  // the flat reader on (the default) or off
};

// Every test runs four times: with each record copied on its own (as a source that copies
// records does), and with the records sliced from one buffer, one per line (as the file source
// reads them), where the parser reads them as one document stream; each with the flat reader on
// and off, so that whatever the flat reader takes it must read as the simdjson walk does.
class JsonParserTest : public JsonParserBase,
                       public ::testing::WithParamInterface<std::tuple<bool, bool>> {
 protected:
  JsonParserTest() { std::tie(one_buffer_, flat_) = GetParam(); }
};

std::vector<std::string> keys(const Batch& b, size_t i) {
  std::vector<std::string> out;
  for (const Field& f : b.fields(b.events()[i])) out.emplace_back(f.key);
  return out;
}

const Value& get(const Batch& b, std::string_view key, size_t i = 0) {
  static const Value kMissing = Value::string("<missing>");
  const Value* v = b.find(b.events()[i], key);
  return v ? *v : kMissing;
}

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void expect_string(const Value& v, std::string_view s) {
  EXPECT_EQ(v.type, Value::Type::kString);
  EXPECT_EQ(v.s, s);
}
void expect_int(const Value& v, int64_t i) {
  ASSERT_EQ(v.type, Value::Type::kInt);
  EXPECT_EQ(v.i, i);
}
void expect_double(const Value& v, double d) {
  ASSERT_EQ(v.type, Value::Type::kDouble);
  EXPECT_EQ(v.d, d);
}
void expect_raw(const Value& v, std::string_view s) {
  EXPECT_EQ(v.type, Value::Type::kRaw);
  EXPECT_EQ(v.s, s);
}

TEST_P(JsonParserTest, ParsesARecordIntoTypedFieldsInOrder) {
  make("time_field: time");
  const std::string line =
      R"({"device":"xbox_one","sev":"success","n":-12,"ok":true,"bad":false,"none":null,)"
      R"("ratio":0.25,"time":1515445354624})";
  BatchPtr b = parse_one(line);
  const Event& e = b->events()[0];
  EXPECT_EQ(keys(*b, 0),
            (std::vector<std::string>{"device", "sev", "n", "ok", "bad", "none", "ratio", "time"}));
  expect_string(get(*b, "device"), "xbox_one");
  expect_string(get(*b, "sev"), "success");
  expect_int(get(*b, "n"), -12);
  EXPECT_EQ(get(*b, "ok").type, Value::Type::kBool);
  EXPECT_TRUE(get(*b, "ok").b);
  EXPECT_FALSE(get(*b, "bad").b);
  EXPECT_EQ(get(*b, "none").type, Value::Type::kNull);
  expect_double(get(*b, "ratio"), 0.25);
  EXPECT_EQ(e.time_ns, kSpsSeconds * 1'000'000'000 + 624'000'000);
  EXPECT_EQ(e.raw, line);
  EXPECT_EQ(ctx_.count("parsed"), 1u);
  EXPECT_EQ(ctx_.count("time_missing"), 0u);
}

TEST_P(JsonParserTest, StringsAndKeysWithoutEscapesAreViewsIntoTheRecord) {
  make("{}");
  BatchPtr b = parse_one(R"({"plain":"abc","esc":"a\"b"})");
  std::string_view raw = b->events()[0].raw;
  for (const Field& f : b->fields(b->events()[0])) EXPECT_TRUE(inside(f.key, raw)) << f.key;
  EXPECT_TRUE(inside(get(*b, "plain").s, raw));
  EXPECT_FALSE(inside(get(*b, "esc").s, raw));
}

TEST_P(JsonParserTest, UnescapesKeysAndValues) {
  make("{}");
  BatchPtr b = parse_one(
      R"({"k\"ey":"line\nnext\ttab \u00e9 \ud83d\ude00 \\ \/","n\u0041me":{"x\\y":"q"}})");
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"k\"ey", "nAme.x\\y"}));
  expect_string(get(*b, "k\"ey"), "line\nnext\ttab \xc3\xa9 \xf0\x9f\x98\x80 \\ /");
  expect_string(get(*b, "nAme.x\\y"), "q");
}

TEST_P(JsonParserTest, FlattensNestedObjectsToDottedKeys) {
  make("{}");
  BatchPtr b = parse_one(R"({"a":{"b":{"c":1},"d":"x"},"e":{},"f":{"g":{}}, "h" : 2 })");
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"a.b.c", "a.d", "e", "f.g", "h"}));
  expect_int(get(*b, "a.b.c"), 1);
  expect_string(get(*b, "a.d"), "x");
  expect_raw(get(*b, "e"), "{}");
  expect_raw(get(*b, "f.g"), "{}");
  expect_int(get(*b, "h"), 2);
}

TEST_P(JsonParserTest, FieldsKeepsOnlyTheNamedPathsAndWhatIsBelowThem) {
  make("fields: [uid, user.id, geo]");
  const std::string line =
      R"({"x":{"uid":"nested","ts":1},"uid":"top","user":{"id":7,"name":"n"},"ts":5,)"
      R"("geo":{"country":"FR","city":{"name":"Lyon"}},"userx":1,"user.id":"dotted"})";
  BatchPtr b = parse_one(line);
  // Only the wanted paths; the same names nested elsewhere are not confused with them. A key
  // that itself holds a dot flattens to the same path, as without `fields`.
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"uid", "user.id", "geo.country", "geo.city.name",
                                                   "user.id"}));
  expect_string(get(*b, "uid"), "top");
  expect_int(get(*b, "user.id"), 7);
  expect_string(get(*b, "geo.city.name"), "Lyon");
  EXPECT_EQ(b->events()[0].raw, line);  // the whole record
}

// A top-level key that holds dots itself is matched against whole paths and against their
// beginnings, as a nested one is; and paths longer than the lookup table's keys still work.
TEST_P(JsonParserTest, FieldsMatchesTopLevelKeysThatHoldDotsAndLongPaths) {
  const std::string long_key(80, 'k');
  make("fields: [a.b.c, x.y, " + long_key + "]");
  BatchPtr b = parse_one(R"({"a.b":{"c":1,"d":2},"a":{"b.c":3,"b":{"c":4}},"x.y":5,"x.yz":6,")" +
                         long_key + R"(":7,"x":{"y":8}})");
  EXPECT_EQ(keys(*b, 0),
            (std::vector<std::string>{"a.b.c", "a.b.c", "a.b.c", "x.y", long_key, "x.y"}));
  expect_int(get(*b, "a.b.c"), 1);  // the first of the repeated keys
  expect_int(get(*b, long_key), 7);
}

TEST_P(JsonParserTest, FieldsStillRejectsMalformedJsonInWhatItSkips) {
  make("fields: [uid]");
  BatchPtr b = parse({R"({"uid":"a","other":{"k":[1,2,}})", R"({"uid":"b","n":01})",
                      R"({"uid":"c","other":{"k":[1,2]}})"});
  ASSERT_EQ(b->size(), 1u);
  expect_string(get(*b, "uid"), "c");
  EXPECT_EQ(ctx_.count("errors"), 2u);
}

TEST_P(JsonParserTest, FieldsAlwaysKeepsTheTimeFieldAndSanitizeFields) {
  make(
      "fields: [uid]\ntime_field: meta.ts\ntime_format: s\n"
      "sanitize: [{name: busted, field: title, prefix: busted, action: reject}]");
  BatchPtr b = parse({R"({"title":"busted 1","uid":"a","meta":{"ts":1515445354}})",
                      R"({"title":"fine","uid":"b","meta":{"ts":1515445354},"n":1})"});
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"title", "uid", "meta.ts"}));
  EXPECT_EQ(b->events()[0].time_ns, kSpsSeconds * 1'000'000'000);
  EXPECT_EQ(ctx_.count("rejected"), 1u);
}

TEST_P(JsonParserTest, FieldsNamingAScalarsChildKeepsNothingOfIt) {
  make("fields: [a.b]");
  BatchPtr b = parse_one(R"({"a":"scalar","c":1})");
  EXPECT_TRUE(keys(*b, 0).empty());
}

TEST_P(JsonParserTest, MaxDepthKeepsDeeperObjectsAsRawJson) {
  make("max_depth: 2");
  BatchPtr b = parse_one(R"({"a":{"b":{ "c" : [1, 2] },"d":3},"x":{"y":2}})");
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"a.b", "a.d", "x.y"}));
  expect_raw(get(*b, "a.b"), R"({ "c" : [1, 2] })");
  expect_int(get(*b, "a.d"), 3);
  expect_int(get(*b, "x.y"), 2);
}

TEST_P(JsonParserTest, MaxDepthOneKeepsEveryObjectRaw) {
  make("max_depth: 1");
  BatchPtr b = parse_one(R"({"a":{"b":{"c":1}} ,"z":1})");
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"a", "z"}));
  expect_raw(get(*b, "a"), R"({"b":{"c":1}})");
}

TEST_P(JsonParserTest, DefaultDepthFlattensEightLevels) {
  make("{}");
  BatchPtr b = parse_one(R"({"1":{"2":{"3":{"4":{"5":{"6":{"7":{"8":{"9":0}}}}}}}}})");
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"1.2.3.4.5.6.7.8"}));
  expect_raw(get(*b, "1.2.3.4.5.6.7.8"), R"({"9":0})");
}

TEST_P(JsonParserTest, ArraysAreRawJson) {
  make("{}");
  BatchPtr b = parse_one(R"({"a":[1, {"b":[true,null]}, "x\"y"] , "e":[],"n":{"l":[[]]}})");
  expect_raw(get(*b, "a"), R"([1, {"b":[true,null]}, "x\"y"])");
  expect_raw(get(*b, "e"), "[]");
  expect_raw(get(*b, "n.l"), "[[]]");
}

TEST_P(JsonParserTest, Numbers) {
  make("{}");
  BatchPtr b = parse_one(
      R"({"max":9223372036854775807,"min":-9223372036854775808,"over":9223372036854775808,)"
      R"("u64max":18446744073709551615,"under":-9223372036854775809,)"
      R"("big":123456789012345678901234567890,"f":1.5,"e":1E2,"negzero":-0.0,"zero":0,)"
      R"("tiny":1e-400,"huge":1e400,"neg_huge":-2.5e999,"pi":3.141592653589793238462643383279,)"
      R"("digits":0.1234567890123456789012,"long":123456789012345678901234567890.5})");
  expect_int(get(*b, "max"), INT64_MAX);
  expect_int(get(*b, "min"), INT64_MIN);
  expect_double(get(*b, "over"), 9223372036854775808.0);
  expect_double(get(*b, "u64max"), 18446744073709551615.0);
  expect_double(get(*b, "under"), -9223372036854775809.0);
  expect_double(get(*b, "big"), 1.2345678901234568e29);
  expect_double(get(*b, "f"), 1.5);
  expect_double(get(*b, "e"), 100.0);
  expect_double(get(*b, "negzero"), 0.0);
  EXPECT_TRUE(std::signbit(get(*b, "negzero").d));
  expect_int(get(*b, "zero"), 0);
  expect_double(get(*b, "tiny"), 0.0);
  expect_raw(get(*b, "huge"), "1e400");
  expect_raw(get(*b, "neg_huge"), "-2.5e999");
  // More than 19 significant digits, correctly rounded (simdjson 3.0 alone makes 0 of them).
  expect_double(get(*b, "pi"), 3.141592653589793);
  expect_double(get(*b, "digits"), 0.12345678901234568);
  expect_double(get(*b, "long"), 1.2345678901234568e29);
}

TEST_P(JsonParserTest, FirstOfRepeatedKeysWins) {
  make("{}");
  BatchPtr b = parse_one(R"({"a":1,"a":2,"b.c":"flat","b":{"c":"nested","d":[1]},"b":{"d":0}})");
  // Repeats stay in the event as they came; every lookup sees the first.
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"a", "a", "b.c", "b.c", "b.d", "b.d"}));
  expect_int(get(*b, "a"), 1);
  expect_string(get(*b, "b.c"), "flat");
  expect_raw(get(*b, "b.d"), "[1]");
}

TEST_P(JsonParserTest, StripPrefixSkipsOtherLines) {
  make(R"(strip_prefix: "data: ")");
  const std::string json = R"({"device":"roku","sev":"success"})";
  BatchPtr b = parse({"data: " + json, ": keep-alive", "", "event: message",
                      "data: ", "data:" + json, "data: " + json + "  "});
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ(b->events()[0].raw, json);
  EXPECT_EQ(b->events()[1].raw, json);
  expect_string(get(*b, "device", 1), "roku");
  EXPECT_EQ(ctx_.count("parsed"), 2u);
  EXPECT_EQ(ctx_.count("skipped"), 5u);
  EXPECT_EQ(ctx_.count("errors"), 0u);
}

TEST_P(JsonParserTest, BlankLinesAreSkipped) {
  make("{}");
  BatchPtr b = parse({"", "   ", "\t\r", R"(  {"a":1} )", "\r"});
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ(b->events()[0].raw, R"({"a":1})");
  EXPECT_EQ(ctx_.count("skipped"), 4u);
}

const std::vector<std::string> kMalformed = {
    R"({"a":1)",
    R"({"a":tru})",
    R"({"a":nul})",
    R"({"a":[tru]})",
    R"({"a":{"b":[1,2 3]}})",
    R"({"a":{"b":{"c":{"d":[1,]}}}})",
    R"({"a":1} x)",
    R"({"a":1}})",
    R"({"a":1}{"b":2})",
    R"({"a" 1})",
    R"({"a":1,})",
    R"({a:1})",
    R"({"a":01})",
    R"({"a":1.})",
    R"({"a":"\x"})",
    R"({"a":"\ud800"})",
    "{\"a\":\"x\ty\"}",
    "{\"a\":\"\xff\xfe\"}",
    R"({"a":"busted data...)",
    "busted data...",
};

TEST_P(JsonParserTest, MalformedLinesAreDeadLettered) {
  make("on_error: dead_letter");
  std::vector<std::string> lines = kMalformed;
  lines.insert(lines.begin() + 3, R"({"good":1})");
  lines.push_back(R"({"good":2})");
  BatchPtr b = parse(lines);
  ASSERT_EQ(b->size(), 2u);
  expect_int(get(*b, "good", 0), 1);
  expect_int(get(*b, "good", 1), 2);
  EXPECT_EQ(ctx_.count("errors"), kMalformed.size());
  ASSERT_EQ(ctx_.dead_letters.size(), kMalformed.size());
  for (size_t i = 0; i < kMalformed.size(); ++i) {
    EXPECT_EQ(ctx_.dead_letters[i].first, kMalformed[i]);
    EXPECT_TRUE(ctx_.dead_letters[i].second.starts_with("invalid JSON"))
        << kMalformed[i] << " -> " << ctx_.dead_letters[i].second;
  }
  // Where a value fails, the reason says where: {"a":tru} fails at byte 5.
  EXPECT_TRUE(ctx_.dead_letters[1].second.starts_with("invalid JSON at byte 5: "))
      << ctx_.dead_letters[1].second;
}

TEST_P(JsonParserTest, MalformedLinesAreDroppedByDefault) {
  make("{}");
  BatchPtr b = parse(kMalformed);
  EXPECT_TRUE(b->empty());
  EXPECT_EQ(ctx_.count("errors"), kMalformed.size());
  EXPECT_TRUE(ctx_.dead_letters.empty());
  // Logged once, not per record.
  EXPECT_EQ(ctx_.logs.size(), 1u);
}

TEST_P(JsonParserTest, DeadLetterKeepsThePrefix) {
  make("strip_prefix: \"data: \"\non_error: dead_letter");
  BatchPtr b = parse({"data: {oops"});
  EXPECT_TRUE(b->empty());
  ASSERT_EQ(ctx_.dead_letters.size(), 1u);
  EXPECT_EQ(ctx_.dead_letters[0].first, "data: {oops");
}

TEST_P(JsonParserTest, TopLevelMustBeAnObject) {
  make("on_error: dead_letter");
  const std::vector<std::string> lines = {"[1,2]", R"("str")", "42", "null", "true"};
  BatchPtr b = parse(lines);
  EXPECT_TRUE(b->empty());
  EXPECT_EQ(ctx_.count("errors"), lines.size());
  ASSERT_EQ(ctx_.dead_letters.size(), lines.size());
  EXPECT_EQ(ctx_.dead_letters[0].second, "not a JSON object (top-level array)");
  EXPECT_EQ(ctx_.dead_letters[2].second, "not a JSON object (top-level number)");
  for (const auto& [raw, reason] : ctx_.dead_letters)
    EXPECT_TRUE(reason.starts_with("not a JSON object")) << raw;
}

TEST_P(JsonParserTest, DeepNestingIsBoundedNotACrash) {
  make("{}");
  std::string deep = R"({"a":)" + std::string(100'000, '[') + std::string(100'000, ']') + "}";
  std::string too_deep = R"({"a":)" + std::string(200, '[') + std::string(200, ']') + "}";
  std::string ok = R"({"a":)" + std::string(100, '[') + std::string(100, ']') + "}";
  BatchPtr b = parse({deep, too_deep, ok});
  ASSERT_EQ(b->size(), 1u);
  expect_raw(get(*b, "a"), ok.substr(5, 200));
  EXPECT_EQ(ctx_.count("errors"), 2u);
}

TEST_P(JsonParserTest, RecordsSlicedFromOneBufferAreParsedInPlace) {
  make("{}");
  // A source that copies a read chunk once and slices lines from it: a record is followed by
  // the next one's bytes, not by padding. A truncated record must not borrow from its neighbour.
  auto b = std::make_unique<Batch>();
  std::string_view chunk = b->copy("{\"a\":12\n3}\n{\"b\":\"x\"}\n{\"c\":4}");
  b->add(chunk.substr(0, 7), 0);
  b->add(chunk.substr(8, 2), 0);
  b->add(chunk.substr(11, 9), 0);
  b->add(chunk.substr(21), 0);
  parser_->parse(ctx_, *b);
  ASSERT_EQ(b->size(), 2u);
  expect_string(get(*b, "b", 0), "x");
  expect_int(get(*b, "c", 1), 4);
  EXPECT_EQ(ctx_.count("errors"), 2u);
}

// Lines of one buffer, as the file source slices them: each event a view of its line.
BatchPtr sliced(const std::string& text, const std::vector<std::string_view>& records) {
  auto b = std::make_unique<Batch>();
  b->ingest_time_ns = kIngest;
  std::string_view buffer = b->copy(text);
  size_t pos = 0;
  for (std::string_view r : records) {
    pos = text.find(r, pos);
    EXPECT_NE(pos, std::string::npos) << r;
    b->add(buffer.substr(pos, r.size()), 0);
    pos += r.size();
  }
  return b;
}

std::string field_text(const Batch& b, size_t i) {
  std::string out;
  for (const Field& f : b.fields(b.events()[i])) {
    out += std::string(f.key) + "=" + std::to_string(static_cast<int>(f.value.type)) + ":";
    f.value.append_text(out);
    out += ";";
  }
  return out;
}

TEST_P(JsonParserTest, ADocumentStreamReadsEveryRecordOfABuffer) {
  make("{time_field: t}");
  std::string text;
  std::vector<std::string> lines;
  for (int i = 0; i < 300; ++i)
    lines.push_back(R"({"id":)" + std::to_string(i) + R"(,"s":"a\"b)" + std::to_string(i % 7) +
                    R"(","n":{"x":)" + std::to_string(i * 0.5) + R"(,"y":[1,{"z":null}]},"t":)" +
                    std::to_string(1000 + i) + "}");
  for (const std::string& line : lines) text += line + (lines.size() % 3 ? "\n" : "\r\n");
  std::vector<std::string_view> records(lines.begin(), lines.end());
  BatchPtr b = sliced(text, records);
  parser_->parse(ctx_, *b);
  ASSERT_EQ(b->size(), lines.size());
  EXPECT_EQ(ctx_.count("parsed"), lines.size());
  // The flat reader declines the first record (it nests, and has escapes), which then parses
  // alone: the rest of the batch goes to a stream, whose last record parses alone.
  EXPECT_EQ(ctx_.count("flat"), 0u);
  EXPECT_EQ(ctx_.count("streamed"), flat_ ? lines.size() - 2 : lines.size() - 1);
  for (size_t i = 0; i < lines.size(); ++i) {
    expect_int(get(*b, "id", i), static_cast<int64_t>(i));
    expect_string(get(*b, "s", i), "a\"b" + std::to_string(i % 7));
    expect_raw(get(*b, "n.y", i), R"([1,{"z":null}])");
    EXPECT_EQ(b->events()[i].time_ns, (1000 + static_cast<int64_t>(i)) * 1'000'000);
    EXPECT_EQ(b->events()[i].raw, lines[i]);
  }
}

// Each kind of record a stream cannot take, between good records of one buffer: the counts and
// fields are those of records parsed one by one, and the stream stops at it.
TEST_P(JsonParserTest, AStreamStopsAtTheFirstRecordItCannotTake) {
  struct Case {
    std::string name;
    std::vector<std::string> bad;  // records (lines) in the middle
    size_t parsed, errors, skipped;
    std::vector<std::string> fields;  // field_text of the parsed middle records
    size_t streamed = 2;              // the two records before the bad ones
  };
  const Case cases[] = {
      {"torn then a line that completes it", {R"({"a":)", R"(1})"}, 0, 2, 0, {}},
      // An unclosed string fails the stream's one stage-1 pass: every record is parsed alone.
      {"torn record", {R"({"a":"x)"}, 0, 1, 0, {}, 0},
      {"two documents on one line", {R"({"a":1} {"b":2})"}, 0, 1, 0, {}},
      {"a scalar", {"42"}, 0, 1, 0, {}},
      {"an array", {"[1,2]"}, 0, 1, 0, {}},
      {"a string spanning lines", {R"({"a":"x)", R"(y"})"}, 0, 2, 0, {}, 0},
      {"an unclosed object, then a valid one", {R"({"a":1,)", R"({"b":2})"}, 1, 1, 0, {"b=2:2;"}},
      // All but the last record, which is parsed alone.
      {"blank lines are no obstacle", {"", "   ", R"({"c":3})"}, 1, 0, 2, {"c=2:3;"}, 4},
      // Invalid UTF-8 fails the stream's one stage-1 pass: every record is parsed alone.
      {"invalid UTF-8", {"{\"a\":\"\xff\"}"}, 0, 1, 0, {}, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeContext ctx;
    std::vector<config::Error> errors;
    auto options = config::options_from_yaml(kDescriptor, "{}", errors);
    ASSERT_TRUE(options);
    JsonParser parser(*options, diag_, /*flat_reader=*/false);  // these records are all flat
    ASSERT_TRUE(parser.start(ctx));
    std::vector<std::string> lines = {R"({"first":1})", R"({"second":2})"};
    lines.insert(lines.end(), c.bad.begin(), c.bad.end());
    lines.push_back(R"({"last":3})");
    lines.push_back(R"({"end":4})");
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    std::vector<std::string_view> records(lines.begin(), lines.end());
    BatchPtr b = sliced(text, records);
    parser.parse(ctx, *b);
    EXPECT_EQ(ctx.count("parsed"), 4 + c.parsed);
    EXPECT_EQ(ctx.count("errors"), c.errors);
    EXPECT_EQ(ctx.count("skipped"), c.skipped);
    EXPECT_EQ(ctx.count("streamed"), c.streamed) << "the stream stops at the first bad one";
    ASSERT_EQ(b->size(), 4 + c.parsed);
    EXPECT_EQ(field_text(*b, 0), "first=2:1;");
    EXPECT_EQ(field_text(*b, 1), "second=2:2;");
    for (size_t k = 0; k < c.parsed; ++k) EXPECT_EQ(field_text(*b, 2 + k), c.fields[k]);
    EXPECT_EQ(field_text(*b, 2 + c.parsed), "last=2:3;");
    EXPECT_EQ(field_text(*b, 3 + c.parsed), "end=2:4;");
  }
}

// A stream checks nothing after its last document: it leaves out an unfinished document there,
// and bytes that are not UTF-8. Its last record is parsed alone, and so is an error.
TEST_P(JsonParserTest, AStreamsLastRecordIsCheckedToItsEnd) {
  flat_ = false;
  make("{}");
  for (std::string last : {R"({"b":{"c":1},"a":2}{)", R"({"a":2}[)", R"({"a":2} {"b")",
                           "{\"a\":2}\xfe", "{\"a\":2} \xc3", "{\"a\":2}\xe2\x82"}) {
    SCOPED_TRACE(last);
    const uint64_t errors = ctx_.count("errors");
    BatchPtr b = parse({R"({"a":1})", last});
    ASSERT_EQ(b->size(), 1u);
    EXPECT_EQ(ctx_.count("errors"), errors + 1);
  }
  EXPECT_EQ(ctx_.count("streamed"), one_buffer_ ? 6u : 0u);  // the first record of each pair
}

TEST_P(JsonParserTest, AStreamSpansOnlyRecordsThatLieTogether) {
  flat_ = false;  // these records are all flat
  make("{}");
  // Two buffers of three lines each, and a record with its own copy between them.
  auto b = std::make_unique<Batch>();
  std::string_view one = b->copy("{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
  std::string_view alone = b->copy("{\"a\":4}");
  std::string_view two = b->copy("{\"a\":5}\n{\"a\":6}\n{\"a\":7}");
  for (size_t i = 0; i < 3; ++i) b->add(one.substr(i * 8, 7), 0);
  b->add(alone, 0);
  for (size_t i = 0; i < 3; ++i) b->add(two.substr(i * 8, 7), 0);
  parser_->parse(ctx_, *b);
  ASSERT_EQ(b->size(), 7u);
  for (size_t i = 0; i < 7; ++i) expect_int(get(*b, "a", i), static_cast<int64_t>(i + 1));
  EXPECT_EQ(ctx_.count("streamed"), 4u);  // each stream's last record is parsed alone
}

TEST_P(JsonParserTest, AStreamThatStopsLeavesAttachedFieldsAndNothingElse) {
  make("{}");
  const std::string text = "{\"a\":1}\n{\"a\":2,\"b\":\n3}\n{\"a\":4}";
  BatchPtr b = sliced(text, {R"({"a":1})", R"({"a":2,"b":)", "3}", R"({"a":4})"});
  for (size_t i = 0; i < 4; ++i)
    b->append_field(b->events()[i], "topic", Value::string(b->copy("t" + std::to_string(i))));
  parser_->parse(ctx_, *b);
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ(field_text(*b, 0), "topic=4:t0;a=2:1;");
  EXPECT_EQ(field_text(*b, 1), "topic=4:t3;a=2:4;");
  EXPECT_EQ(ctx_.count("errors"), 2u);
}

class JsonParserFlatTest : public JsonParserBase {
 protected:
  JsonParserFlatTest() { one_buffer_ = true; }
};

// Records the flat reader takes, and records it must decline (each then read, or refused, the
// simdjson way): a parser with it and one without give each record the same fields, to the bit,
// or the same error.
TEST_F(JsonParserFlatTest, ItReadsWhatTheSimdjsonWalkReadsAndDeclinesTheRest) {
  struct Case {
    std::string record;
    bool flat;                   // taken by the flat reader
    std::string options = "{}";  // the parsers' options
  };
  const std::string deep = std::string(128, '[') + std::string(128, ']');
  const std::string deeper = std::string(129, '[') + std::string(129, ']');
  const Case cases[] = {
      {"{}", true},
      {"{ \t}", true},
      {R"({"a":"x","b":-12,"c":0,"d":true,"e":false,"f":null})", true},
      {"{ \"a\" :\t\"x\" ,\r\n\"b\" : 1 }", true},
      {R"({"s":"","t":" "})", true},
      {R"({"long":"a string longer than sixteen bytes, and then some more of it to read"})", true},
      {"{\"u\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xee\x80\x80\"}", true},
      {"{\"k\xc3\xa9y\":1,\"\xe2\x82\xac\":2}", true},
      {R"({"n":123456789012345678,"m":-123456789012345678,"z":0})", true},
      {R"({"f":1.5,"g":-0.25,"h":1e10,"i":1E-5,"j":2.5e+3,"k":-0.0,"l":0e0,"m":-0e-0})", true},
      {R"({"f":0.1,"g":3.141592653589793238462643383279,"h":1.7976931348623157e308})", true},
      {R"({"f":123456789012345678901234567890.5,"g":9007199254740993.0,"h":2.2250738585072014e-308})",
       true},
      {R"({"a":1,"a":2,"b":"same key again"})", true},
      {R"({"seventeen_bytes_k":1,"sixteen_bytes_ke":2,"a_much_longer_key_than_that":3})", true},
      // Valid, declined: simdjson has its own answer.
      {R"({"n":1234567890123456789})", false},
      {R"({"n":-1234567890123456789})", false},
      {R"({"n":18446744073709551616})", false},
      {R"({"n":-0})", false},
      {R"({"n":1e400})", false},
      {R"({"n":-1e400})", false},
      {R"({"n":1e-400})", false},
      {R"({"o":{"p":1}})", false},
      {R"({"o":{}})", false},
      {R"({"a":{"p":[1]}})", false, "{fields: [a]}"},
      {R"({"b":{"c":1,"d":2}})", false, "{fields: [b.c]}"},
      // Arrays, and objects kept whole or not kept at all, are read too.
      {R"({"a":[1]})", true},
      {R"({"a":[],"b":[ ],"c":[1,"x",true,null,-2.5,{"d":[{}]},[[]]],"e":1})", true},
      {R"({"a": [ 1 , { "b" : 2 } ] })", true},
      {R"({"o":{"p":1,"q":[2,{"r":null}]},"a":2,"e":{}})", true, "{max_depth: 1}"},
      {R"({"a":1,"o":{"p":"x","q":[1,{"r":false}]},"t":[],"u":{}})", true, "{fields: [a]}"},
      {R"({"a":[1,2],"o":{"p":"x"}})", true, "{fields: [a]}"},
      {R"({"b":[1,{"c":2}],"x":{"c":3}})", true, "{fields: [b.c]}"},
      {R"({"b":"x","c":2})", true, "{fields: [b.c]}"},
      {R"({"a":1,"o":)" + deep + "}", true, "{fields: [a]}"},
      {R"({"a":1,"o":)" + deeper + "}", false, "{fields: [a]}"},
      {R"({"a":1,"o":{"p":1e400}})", false, "{fields: [a]}"},
      {R"({"a":1,"o":{"p":-0}})", false, "{fields: [a]}"},
      {R"({"a":1,"o":{"p":"\t"}})", false, "{fields: [a]}"},
      {R"({"a":1,"o":{"p\u0041":1}})", false, "{fields: [a]}"},
      {R"({"a":1,"o":[1,]})", false, "{fields: [a]}"},
      {R"({"a":1,"o":[,1]})", false, "{fields: [a]}"},
      {R"({"a":1,"o":[1 2]})", false, "{fields: [a]}"},
      {R"({"a":1,"o":[1})", false, "{fields: [a]}"},
      {R"({"a":1,"o":{"p":1]})", false, "{fields: [a]}"},
      {R"({"a":1,"o":{"p" 1}})", false, "{fields: [a]}"},
      {R"({"a":1,"o":{"p":}})", false, "{fields: [a]}"},
      {R"({"a":1,"o":{"p":1,}})", false, "{fields: [a]}"},
      {R"({"a":1,"o":{p:1}})", false, "{fields: [a]}"},
      {R"({"a":1,"o":{"p":1})", false, "{fields: [a]}"},
      {R"({"a":1,"o":[)", false, "{fields: [a]}"},
      {R"({"a":1,"o":{)", false, "{fields: [a]}"},
      {R"({"a":1,"o":{"p")", false, "{fields: [a]}"},
      {R"({"a":1,"o":["x)", false, "{fields: [a]}"},
      {"{\"a\":1,\"o\":[\"\xc3\"]}", false, "{fields: [a]}"},
      {R"({"a":-[1]})", false},
      {R"({"a":-{}})", false, "{fields: [b]}"},
      {R"({"a":t[1]})", false},
      {R"({"a":[1],})", false},
      {R"({"a":[1]])", false},
      {R"({"e":"a\nb"})", false},
      {R"({"k\u0041":1})", false},
      // Invalid, declined: the simdjson walk explains why.
      {R"({"a":1,})", false},
      {R"({"a" 1})", false},
      {R"({"a":tru})", false},
      {R"({"a":truex})", false},
      {R"({"a":nul})", false},
      {R"({"a":01})", false},
      {R"({"a":1.})", false},
      {R"({"a":.5})", false},
      {R"({"a":+1})", false},
      {R"({"a":1e})", false},
      {R"({"a":1e+})", false},
      {R"({"a":-})", false},
      {R"({"a":--1})", false},
      {R"({a:1})", false},
      {R"({"a":"x)", false},
      {R"({"a":1}})", false},
      {R"({"a":1} x)", false},
      {R"({"a":1 "b":2})", false},
      {R"({,})", false},
      {"{", false},
      {R"({"a")", false},
      {R"({"a":)", false},
      {"{\"a\":\"\x01\"}", false},
      {"{\"a\":\"\x7f\"}", true},
      {"{\"a\":\"\x80\"}", false},
      {"{\"a\":\"\xc0\x80\"}", false},
      {"{\"a\":\"\xc1\xbf\"}", false},
      {"{\"a\":\"\xe0\x80\x80\"}", false},
      {"{\"a\":\"\xed\xa0\x80\"}", false},
      {"{\"a\":\"\xf0\x80\x80\x80\"}", false},
      {"{\"a\":\"\xf4\x90\x80\x80\"}", false},
      {"{\"a\":\"\xf5\x80\x80\x80\"}", false},
      {"{\"a\":\"\xe2\x82\"}", false},
      {"{\"a\":\"\xe2\x82", false},
      {"{\"a\":\"x\xc3\"}", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.record);
    std::vector<std::string> results;
    for (bool flat : {true, false}) {
      FakeContext ctx;
      std::vector<config::Error> errors;
      auto options = config::options_from_yaml(kDescriptor, c.options, errors);
      ASSERT_TRUE(options) << c.options;
      JsonParser parser(*options, diag_, flat);
      ASSERT_TRUE(parser.start(ctx));
      BatchPtr b = std::make_unique<Batch>();
      b->add(b->copy(c.record), 0);
      parser.parse(ctx, *b);
      EXPECT_EQ(ctx.count("flat"), flat && c.flat ? 1u : 0u);
      results.push_back(b->size() == 1     ? exact_fields(*b, b->events()[0])
                        : ctx.logs.empty() ? "no error logged"
                                           : ctx.logs.back().second);
    }
    EXPECT_EQ(results[0], results[1]);
  }
}

TEST_F(JsonParserFlatTest, AValidRecordItDeclinesSendsTheRestOfTheBatchToStreams) {
  make("{}");
  BatchPtr b = parse({R"({"a":1})", R"({"a":2})", R"({"n":{"x":3}})", R"({"n":{"x":4}})",
                      R"({"a":5})", R"({"n":{"x":6}})"});
  ASSERT_EQ(b->size(), 6u);
  EXPECT_EQ(ctx_.count("flat"), 2u);
  // The third parses alone; a stream takes the rest, but for its last record, parsed alone.
  EXPECT_EQ(ctx_.count("streamed"), 2u);
  expect_int(get(*b, "n.x", 3), 4);
  expect_int(get(*b, "a", 4), 5);
  // The next batch starts with the flat reader again.
  b = parse({R"({"a":7})"});
  EXPECT_EQ(ctx_.count("flat"), 3u);
}

// Records that end where a value should begin, each followed in its buffer by what would
// complete it: nothing past a record's end is read as part of it.
TEST_F(JsonParserFlatTest, NothingPastARecordsEndIsReadAsItsValue) {
  make("{}");
  auto b = std::make_unique<Batch>();
  const std::string_view buffer = b->copy(R"({"a":true}{"b":"x"}{"c":12}{"d":-0.5})");
  b->add(buffer.substr(0, 5), 0);   // {"a":   then true}
  b->add(buffer.substr(10, 6), 0);  // {"b":"  then x"}
  b->add(buffer.substr(19, 6), 0);  // {"c":1  then 2}
  b->add(buffer.substr(27, 5), 0);  // {"d":   then -0.5}
  parser_->parse(ctx_, *b);
  EXPECT_EQ(b->size(), 0u);
  EXPECT_EQ(ctx_.count("errors"), 4u);
  EXPECT_EQ(ctx_.count("flat"), 0u);
}

TEST_F(JsonParserFlatTest, AMalformedRecordLeavesTheFlatReaderOnForTheRest) {
  make("{}");
  BatchPtr b = parse({R"({"a":1})", R"({"a":)", R"({"a":3})", R"({"a":"x)", R"({"a":5})"});
  ASSERT_EQ(b->size(), 3u);
  EXPECT_EQ(ctx_.count("errors"), 2u);
  EXPECT_EQ(ctx_.count("flat"), 3u);
  EXPECT_EQ(ctx_.count("streamed"), 0u);
  expect_int(get(*b, "a", 2), 5);
}

TEST_P(JsonParserTest, FieldsASourceAttachedAreKept) {
  make("{}");
  auto b = std::make_unique<Batch>();
  Event& first = b->add(b->copy(R"({"a":1,"topic":"mine"})"), 0);
  b->append_field(first, "topic", Value::string("t1"));
  Event& second = b->add(b->copy(R"({"a":2})"), 0);
  b->append_field(second, "topic", Value::string("t2"));
  parser_->parse(ctx_, *b);
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"topic", "a", "topic"}));  // the first wins
  expect_string(get(*b, "topic", 0), "t1");
  expect_int(get(*b, "a", 0), 1);
  expect_string(get(*b, "topic", 1), "t2");
  expect_int(get(*b, "a", 1), 2);
}

TEST_P(JsonParserTest, CountersAddUpOverMixedBatches) {
  make(R"(strip_prefix: "data: ")");
  std::vector<std::string> lines;
  size_t parsed = 0, errors = 0, skipped = 0;
  for (int i = 0; i < 500; ++i) {
    switch (i % 5) {
      case 0:
        lines.push_back(R"(data: {"i":)" + std::to_string(i) + "}");
        ++parsed;
        break;
      case 1:
        lines.push_back("data: {\"i\":");
        ++errors;
        break;
      case 2:
        lines.push_back("");
        ++skipped;
        break;
      case 3:
        lines.push_back("id: 7");
        ++skipped;
        break;
      case 4:
        lines.push_back("data: [1]");
        ++errors;
        break;
    }
  }
  BatchPtr b = parse(lines);
  EXPECT_EQ(b->size(), parsed);
  EXPECT_EQ(ctx_.count("parsed"), parsed);
  EXPECT_EQ(ctx_.count("errors"), errors);
  EXPECT_EQ(ctx_.count("skipped"), skipped);
  for (size_t k = 0; k < b->size(); ++k) expect_int(get(*b, "i", k), static_cast<int64_t>(k * 5));
}

struct TimeCase {
  const char* format;
  const char* value;  // JSON text of the time field
  int64_t expected_ns;
};

class JsonParserTimeTest : public JsonParserBase, public ::testing::WithParamInterface<TimeCase> {};

TEST_P(JsonParserTimeTest, ReadsEventTime) {
  const TimeCase& c = GetParam();
  make(std::string("time_field: ts\ntime_format: ") + c.format);
  BatchPtr b = parse_one(std::string(R"({"x":1,"ts":)") + c.value + "}");
  EXPECT_EQ(b->events()[0].time_ns, c.expected_ns) << c.format << " " << c.value;
  EXPECT_EQ(ctx_.count("time_missing"), 0u);
}

constexpr int64_t kSps = kSpsSeconds * 1'000'000'000;

INSTANTIATE_TEST_SUITE_P(
    Formats, JsonParserTimeTest,
    ::testing::Values(TimeCase{"s", "1515445354", kSps},
                      TimeCase{"s", "1515445354.5", kSps + 500'000'000},
                      TimeCase{"s", "-1", -1'000'000'000}, TimeCase{"s", "\"1515445354\"", kSps},
                      TimeCase{"ms", "1515445354624", kSps + 624'000'000},
                      TimeCase{"ms", "1515445354624.25", kSps + 624'250'000},
                      TimeCase{"ms", "\"1515445354624\"", kSps + 624'000'000},
                      TimeCase{"us", "1515445354624123", kSps + 624'123'000},
                      TimeCase{"ns", "1515445354624123456", kSps + 624'123'456},
                      TimeCase{"ns", "9223372036854775807", INT64_MAX},
                      TimeCase{"rfc3339", "\"2018-01-08T21:02:34.624Z\"", kSps + 624'000'000},
                      TimeCase{"rfc3339", "\"2018-01-08T21:02:34Z\"", kSps},
                      TimeCase{"rfc3339", "\"2018-01-08T22:02:34.624+01:00\"", kSps + 624'000'000},
                      TimeCase{"rfc3339", "\"2018-01-08T16:32:34.624-04:30\"", kSps + 624'000'000},
                      TimeCase{"rfc3339", "\"2018-01-09T02:02:34+0500\"", kSps},
                      TimeCase{"rfc3339", "\"2018-01-08t21:02:34.123456789z\"", kSps + 123'456'789},
                      TimeCase{"rfc3339", "\"2018-01-08 21:02:34.1234567891Z\"",
                               kSps + 123'456'789},
                      TimeCase{"rfc3339", "\"1969-12-31T23:59:59Z\"", -1'000'000'000},
                      TimeCase{"rfc3339", "\"2000-02-29T12:00:00Z\"", 951'825'600'000'000'000}));

TEST_P(JsonParserTest, MissingOrBadTimeFallsBackToIngestTime) {
  make("time_field: ts\ntime_format: rfc3339");
  const std::vector<std::string> lines = {
      R"({"x":1})",
      R"({"ts":"yesterday"})",
      R"({"ts":"2018-13-08T21:02:34Z"})",
      R"({"ts":"2018-02-30T21:02:34Z"})",
      R"({"ts":"2018-01-08T24:00:00Z"})",
      R"({"ts":"2018-01-08T21:02:34"})",
      R"({"ts":"2018-01-08T21:02:34.Z"})",
      R"({"ts":"2018-01-08T21:02:34Zjunk"})",
      R"({"ts":"2300-01-01T00:00:00Z"})",
      R"({"ts":1515445354})",
      R"({"ts":{"nested":1}})",
  };
  BatchPtr b = parse(lines);
  ASSERT_EQ(b->size(), lines.size());
  for (const Event& e : b->events()) EXPECT_EQ(e.time_ns, kIngest) << e.raw;
  EXPECT_EQ(ctx_.count("time_missing"), lines.size());
}

TEST_P(JsonParserTest, NumericTimeRejectsNonNumbersAndOverflow) {
  make("time_field: ts\ntime_format: s");
  const std::vector<std::string> lines = {
      R"({"ts":true})",       R"({"ts":"12x"})", R"({"ts":null})", R"({"ts":[1]})",
      R"({"ts":9223372037})",  // * 1e9 overflows int64
      R"({"ts":1e300})",
  };
  BatchPtr b = parse(lines);
  ASSERT_EQ(b->size(), lines.size());
  for (const Event& e : b->events()) EXPECT_EQ(e.time_ns, kIngest) << e.raw;
  EXPECT_EQ(ctx_.count("time_missing"), lines.size());
}

TEST_P(JsonParserTest, TimeFieldMayBeNested) {
  make("time_field: meta.ts\ntime_format: s");
  BatchPtr b = parse_one(R"({"meta":{"ts":1515445354}})");
  EXPECT_EQ(b->events()[0].time_ns, kSps);
}

TEST_P(JsonParserTest, WithoutTimeFieldTheEventTimeIsKept) {
  make("{}");
  auto b = batch({R"({"time":5})"});
  b->events()[0].time_ns = 42;
  parser_->parse(ctx_, *b);
  EXPECT_EQ(b->events()[0].time_ns, 42);
  EXPECT_EQ(ctx_.count("time_missing"), 0u);
}

TEST_P(JsonParserTest, OneParserHandlesManyBatchesOfVaryingSizes) {
  make("{}");
  for (int round = 0; round < 20; ++round) {
    std::string big = R"({"s":")" + std::string(static_cast<size_t>(round) * 5000, 'x') + R"("})";
    BatchPtr b = parse({big, R"({"n":)" + std::to_string(round) + "}"});
    ASSERT_EQ(b->size(), 2u);
    EXPECT_EQ(get(*b, "s", 0).s.size(), static_cast<size_t>(round) * 5000);
    expect_int(get(*b, "n", 1), round);
  }
}

// --- sanitize rules

TEST_P(JsonParserTest, SanitizeRejectDropsMatchingRecordsAndCountsThemPerRule) {
  make(R"(
sanitize:
  - name: busted
    field: title
    prefix: "busted data"
    action: reject
)");
  BatchPtr b = parse({R"({"title":"narcos","n":1})", R"({"title":"busted data 1234","n":2})",
                      R"({"title":"the busted data","n":3})", R"({"title":"busted dat","n":4})"});
  ASSERT_EQ(b->size(), 3u);
  expect_int(get(*b, "n", 0), 1);
  expect_int(get(*b, "n", 1), 3);
  expect_int(get(*b, "n", 2), 4);
  EXPECT_EQ(ctx_.count("rejected"), 1u);
  EXPECT_EQ(ctx_.count("sanitize.busted.rejected"), 1u);
  EXPECT_EQ(ctx_.count("parsed"), 3u);
  EXPECT_TRUE(ctx_.dead_letters.empty());
}

TEST_P(JsonParserTest, SanitizeRejectDoesNotFailTheBatchAcks) {
  make("sanitize: [{name: all, field: title, action: reject}]");
  std::optional<bool> acked;
  {
    BatchPtr b = batch({R"({"title":"x"})", R"({"title":"y"})"});
    b->acks.push_back(AckRef::make([&](bool ok) { acked = ok; }));
    parser_->parse(ctx_, *b);
    EXPECT_EQ(b->size(), 0u);
    b->resolve_acks(true);  // what the rest of the pipeline does with an empty batch
  }
  ASSERT_TRUE(acked.has_value());
  EXPECT_TRUE(*acked);
  EXPECT_EQ(ctx_.count("sanitize.all.rejected"), 2u);
}

TEST_P(JsonParserTest, SanitizeRejectCanDeadLetterTheRecordAsRead) {
  make(
      "strip_prefix: \"data: \"\non_reject: dead_letter\n"
      "sanitize: [{name: busted, field: title, match: '^busted data \\d+$', action: reject}]");
  BatchPtr b = parse({R"(data: {"title":"busted data 7"})", R"(data: {"title":"busted data x"})"});
  ASSERT_EQ(b->size(), 1u);
  ASSERT_EQ(ctx_.dead_letters.size(), 1u);
  EXPECT_EQ(ctx_.dead_letters[0].first, R"(data: {"title":"busted data 7"})");
  EXPECT_EQ(ctx_.dead_letters[0].second,
            R"(rejected by sanitize rule 'busted': field title match "^busted data \\d+$")");
}

TEST_P(JsonParserTest, SanitizeRejectFailsTheAcksWhenTheDeadLetterIsLost) {
  make("on_reject: dead_letter\nsanitize: [{name: all, field: title, action: reject}]");
  ctx_.dead_letter_ok = false;
  std::optional<bool> acked;
  {
    BatchPtr b = batch({R"({"title":"x"})"});
    b->acks.push_back(AckRef::make([&](bool ok) { acked = ok; }));
    parser_->parse(ctx_, *b);
  }
  ASSERT_TRUE(acked.has_value());
  EXPECT_FALSE(*acked);
}

TEST_P(JsonParserTest, SanitizeStripRemovesTheFieldAndRewritesRaw) {
  make("sanitize: [{name: token, field: auth.token, match: ^tok_, action: strip}]");
  const std::string kept = R"({"auth":{"token":"abc","user":"u"},"n":1})";
  BatchPtr b = parse({R"({"auth":{"token":"tok_1","user":"u"},"n":2})", kept});
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"auth.user", "n"}));
  EXPECT_EQ(b->events()[0].raw, R"({"auth.user":"u","n":2})");
  EXPECT_EQ(keys(*b, 1), (std::vector<std::string>{"auth.token", "auth.user", "n"}));
  EXPECT_EQ(b->events()[1].raw, kept);  // untouched: still the record as read
  EXPECT_EQ(ctx_.count("sanitize.token.stripped"), 1u);
  EXPECT_EQ(ctx_.count("parsed"), 2u);
}

TEST_P(JsonParserTest, SanitizeStripRemovesEveryFieldOfARepeatedKey) {
  make("sanitize: [{name: pw, field: password, action: strip}]");
  BatchPtr b = parse_one(R"({"password":"a","x":1,"password":2})");
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"x"}));
}

TEST_P(JsonParserTest, SanitizeReplaceSetsAStringValue) {
  make(R"(
sanitize:
  - name: uk
    field: geo.country
    equals: United Kingdom
    action: replace
    value: UK
)");
  BatchPtr b = parse(
      {R"({"geo":{"country":"United Kingdom"},"n":1})", R"({"geo":{"country":"France"},"n":2})"});
  ASSERT_EQ(b->size(), 2u);
  expect_string(get(*b, "geo.country", 0), "UK");
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"geo.country", "n"}));
  EXPECT_EQ(b->events()[0].raw, R"({"geo.country":"UK","n":1})");
  expect_string(get(*b, "geo.country", 1), "France");
  EXPECT_EQ(ctx_.count("sanitize.uk.replaced"), 1u);
}

TEST_P(JsonParserTest, SanitizeRulesApplyInOrderOnWhatEarlierRulesLeft) {
  make(R"(
sanitize:
  - {name: fix, field: title, equals: bad, action: replace, value: busted}
  - {name: drop, field: title, equals: busted, action: reject}
  - {name: never, field: title, action: strip}
)");
  BatchPtr b = parse({R"({"title":"bad"})", R"({"title":"ok"})"});
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{}));
  EXPECT_EQ(ctx_.count("sanitize.fix.replaced"), 1u);
  EXPECT_EQ(ctx_.count("sanitize.drop.rejected"), 1u);
  EXPECT_EQ(ctx_.count("sanitize.never.stripped"), 1u);  // the rejected record never got there
}

TEST_P(JsonParserTest, SanitizeRulesWithoutANameAreNamedByTheirIndex) {
  make(R"(
sanitize:
  - {field: a, action: strip}
  - {name: named, field: b, action: strip}
  - {field: title, action: reject}
)");
  BatchPtr b = parse({R"({"a":1,"b":2,"n":1})", R"({"title":"x"})"});
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"n"}));
  EXPECT_EQ(ctx_.count("sanitize.0.stripped"), 1u);
  EXPECT_EQ(ctx_.count("sanitize.named.stripped"), 1u);
  EXPECT_EQ(ctx_.count("sanitize.2.rejected"), 1u);
}

TEST_P(JsonParserTest, SanitizeTestsMatchStringsOnly) {
  make(R"(
sanitize:
  - {name: a, field: title, equals: 1234, action: reject}
  - {name: b, field: title, prefix: 1, action: reject}
  - {name: c, field: title, contains: true, action: reject}
  - {name: d, field: title, match: ".*", action: reject}
)");
  BatchPtr b = parse({R"({"title":1234})", R"({"title":true})", R"({"title":null})",
                      R"({"title":[1234]})", R"({"title":{"x":"1234"}})", R"({"title":12.5})"});
  EXPECT_EQ(b->size(), 6u);
  EXPECT_EQ(ctx_.count("rejected"), 0u);
  parse({R"({"title":"1234"})"});
  EXPECT_EQ(ctx_.count("sanitize.a.rejected"), 1u);
}

TEST_P(JsonParserTest, SanitizeWithoutATestMatchesAnyValue) {
  make("sanitize: [{name: s, field: secret, action: strip}]");
  BatchPtr b = parse({R"({"secret":1,"k":1})", R"({"secret":[1],"k":2})", R"({"k":3})"});
  ASSERT_EQ(b->size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(keys(*b, i), (std::vector<std::string>{"k"}));
  EXPECT_EQ(ctx_.count("sanitize.s.stripped"), 2u);
}

TEST_P(JsonParserTest, SanitizeIgnoresAMissingField) {
  make(
      "sanitize: [{name: r, field: title, action: reject}, {name: s, field: a.b, action: "
      "strip}]");
  const std::string line = R"({"name":"x","a":{"c":1}})";
  BatchPtr b = parse_one(line);
  EXPECT_EQ(b->events()[0].raw, line);
  EXPECT_EQ(ctx_.count("rejected"), 0u);
  EXPECT_EQ(ctx_.count("sanitize.s.stripped"), 0u);
}

TEST_P(JsonParserTest, SanitizeSeesFieldsBelowMaxDepthOnlyAsRawValues) {
  make(
      "max_depth: 1\n"
      "sanitize: [{name: r, field: a.b, action: reject}, {name: s, field: a, action: strip}]");
  BatchPtr b = parse_one(R"({"a":{"b":"x"},"n":1})");
  EXPECT_EQ(keys(*b, 0), (std::vector<std::string>{"n"}));
  EXPECT_EQ(ctx_.count("rejected"), 0u);
}

TEST_P(JsonParserTest, SanitizeRunsBeforeTheEventTimeIsRead) {
  make(
      "time_field: t\n"
      "sanitize: [{name: t, field: t, equals: never, action: replace, value: 1000}]");
  BatchPtr b = parse_one(R"({"t":"never"})");
  EXPECT_EQ(b->events()[0].time_ns, 1'000'000'000);
}

TEST_P(JsonParserTest, SanitizeKeepsStringsWithEscapesAndRewritesValidJson) {
  make("sanitize: [{name: s, field: drop, action: strip}]");
  BatchPtr b = parse_one(R"({"q":"a\"b\n","drop":1,"r":[1,{"x":2}],"d":0.5})");
  std::string_view raw = b->events()[0].raw;
  EXPECT_EQ(raw, R"({"q":"a\"b\n","r":[1,{"x":2}],"d":0.5})");
  BatchPtr again = parse_one(std::string(raw));
  expect_string(get(*again, "q"), "a\"b\n");
}

// What the schema cannot say is the factory's to report, all of it, each at the option of the
// rule it is about.
TEST(JsonParserOptionsTest, SanitizeRuleErrorsAreAllReportedAtTheirOption) {
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(kDescriptor, R"(
sanitize:
  - {field: title, match: "^(busted", action: reject}
  - {field: "", action: reject}
  - {field: x, action: strip, prefix: a, equals: b}
  - {field: x, action: replace}
  - {name: bad name, field: x, action: strip, value: y}
  - {name: "3", field: x, action: strip}
  - {name: dup, field: x, action: strip}
  - {name: dup, field: y, action: strip}
  - {name: "9", field: x, action: strip}
  - {field: z, action: strip}
  - {name: fine, field: z, action: strip}
)",
                                           errors);
  ASSERT_TRUE(options) << errors.front().to_string();
  ingestd::testing::CollectingDiagnostics diag;
  JsonParser parser(*options, diag);
  std::vector<std::string> got;
  for (const auto& [option, message] : diag.errors) got.push_back(option + ": " + message);
  EXPECT_THAT(
      got,
      ::testing::ElementsAre(
          "sanitize.0.match: invalid regular expression \"^(busted\": missing ): ^(busted",
          "sanitize.1.field: expected a field's dotted path, got an empty one",
          "sanitize.2.prefix: give at most one of equals, prefix, contains, match (the rule "
          "also has 'equals')",
          "sanitize.3.action: replace needs 'value' (the replacement)",
          "sanitize.4.name: a rule name (it names the rule's counters) may hold only letters, "
          "digits, _ and -",
          "sanitize.4.value: only for action: replace",
          "sanitize.5.name: rule name '3' is already used by sanitize.3 (a rule's name names its "
          "counters: it must be unique)",
          "sanitize.7.name: rule name 'dup' is already used by sanitize.6 (a rule's name names "
          "its counters: it must be unique)",
          "sanitize.9: this rule is named by its index, '9', which sanitize.8 already uses as its "
          "name: give one of them another name"));
}

// The schema's own errors come from the core, with positions, all at once.
TEST(JsonParserOptionsTest, SanitizeRulesAreCheckedAgainstTheSchema) {
  std::vector<config::Error> errors;
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, R"(sanitize:
  - {field: title, action: explode}
  - {action: reject}
  - {field: x, action: reject, patern: a}
  - field=x action=reject
)",
                                         errors));
  std::vector<std::string> got;
  for (const config::Error& e : errors) got.push_back(e.to_string());
  EXPECT_THAT(got,
              ::testing::ElementsAre(
                  "<options>:2:28: sanitize.0.action: expected one of reject, strip, "
                  "replace, got 'explode'",
                  "<options>:3:5: missing required option 'sanitize.1.field'",
                  "<options>:4:32: unknown option 'sanitize.2.patern'",
                  "<options>:5:5: sanitize.3: expected a mapping, got 'field=x action=reject'"));

  errors.clear();
  EXPECT_FALSE(config::options_from_yaml(
      kDescriptor, "sanitize:\n  busted: field=title prefix=\"busted data\" action=reject\n",
      errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(),
            "<options>:2:3: sanitize: expected a list of mappings, got a mapping");
}

TEST(JsonParserOptionsTest, EverySanitizeRuleOptionHasADoc) {
  for (const OptionSpec& spec : kSanitizeRuleOptions)
    EXPECT_GT(std::strlen(spec.doc), 20u) << spec.name;
}

// A factory's report about `sanitize.<index>.<option>` names a path whose position the core
// recorded: the value of that option in the file.
TEST(JsonParserOptionsTest, SanitizeErrorsNameOptionsWithFilePositions) {
  struct Catalog : config::Catalog {
    const ComponentDescriptor* find(Kind kind, std::string_view type) const override {
      if (kind == Kind::kParser && type == "json") return &kDescriptor;
      if (kind == Kind::kSource && type == "lines") return &source;
      return nullptr;
    }
    std::vector<std::string> types(Kind kind) const override {
      return {kind == Kind::kParser ? "json" : "lines"};
    }
    ComponentDescriptor source{
        sizeof(ComponentDescriptor), Kind::kSource, "lines", "", nullptr, 0, 0, nullptr};
  } catalog;
  const std::string text = R"(sources:
  in: {type: lines}
parsers:
  events:
    type: json
    inputs: [in]
    sanitize:
      - field: title
        action: strip
      - name: busted
        field: title
        match: "^(busted"
        action: reject
)";
  std::vector<config::Error> errors;
  auto pipeline = config::load(
      "p.yaml", text, catalog, [](std::string_view) { return std::optional<std::string>(); },
      errors);
  ASSERT_TRUE(pipeline) << errors.front().to_string();
  const config::ComponentConfig& events = *pipeline->find("events");
  ingestd::testing::CollectingDiagnostics diag;
  JsonParser parser(events.options, diag);
  ASSERT_EQ(diag.errors.size(), 1u);
  EXPECT_EQ(diag.errors[0].first, "sanitize.1.match");
  const config::Position& at = events.option_positions.at(diag.errors[0].first);
  EXPECT_EQ(at.line, 12);
  EXPECT_EQ(at.column, 16);
}

TEST(JsonParserOptionsTest, SanitizeIsOptional) {
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(kDescriptor, "{}", errors);
  ASSERT_TRUE(options);
  ingestd::testing::CollectingDiagnostics diag;
  JsonParser parser(*options, diag);
  EXPECT_TRUE(diag.errors.empty());
}

TEST(JsonParserOptionsTest, FieldsMustBeDottedPaths) {
  for (const char* yaml : {"fields: ['']", "fields: [.a]", "fields: [a.]"}) {
    std::vector<config::Error> errors;
    auto options = config::options_from_yaml(kDescriptor, yaml, errors);
    ASSERT_TRUE(options) << yaml;
    ingestd::testing::CollectingDiagnostics diag;
    JsonParser parser(*options, diag);
    ASSERT_EQ(diag.errors.size(), 1u) << yaml;
    EXPECT_EQ(diag.errors[0].first, "fields");
  }
}

TEST(JsonParserOptionsTest, SchemaRejectsBadOptions) {
  std::vector<config::Error> errors;
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "max_depth: 0", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "on_error: ignore", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "time_format: minutes", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "on_reject: keep", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "sanitize: [field=title]", errors));
  EXPECT_EQ(errors.size(), 5u);
}

TEST(JsonParserOptionsTest, EveryOptionHasADoc) {
  for (const OptionSpec& spec : kJsonParserOptions)
    EXPECT_GT(std::strlen(spec.doc), 20u) << spec.name;
}

INSTANTIATE_TEST_SUITE_P(Layouts, JsonParserTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<bool, bool>>& info) {
                           return std::string(std::get<0>(info.param) ? "OneBuffer"
                                                                      : "CopiedRecords") +
                                  (std::get<1>(info.param) ? "Flat" : "Simdjson");
                         });

}  // namespace
}  // namespace ingestd::plugins

#include "body.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <set>
#include <string>
#include <vector>

#include "shared/net/gunzip.h"

namespace ingestd::loadgen {
namespace {

BodyRenderer make(std::string tmpl, uint32_t records, BodyFormat format, bool gzip = false,
                  uint64_t seed = 7) {
  BodyRenderer r;
  std::string error;
  EXPECT_TRUE(r.init({std::move(tmpl), records, format, gzip, seed}, error)) << error;
  return r;
}

// The records of an uncompressed body as JSON texts: the array's members or the NDJSON lines.
std::vector<std::string> records_of(std::string_view body, BodyFormat format) {
  std::vector<std::string> out;
  if (format == BodyFormat::kArray) {
    simdjson::dom::parser parser;
    simdjson::dom::array array = parser.parse(std::string(body)).get_array().value();
    for (simdjson::dom::element e : array) out.push_back(simdjson::minify(e));
    return out;
  }
  EXPECT_EQ(body.back(), '\n');
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t nl = body.find('\n', pos);
    out.emplace_back(body.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

TEST(BodyTest, EachShapeIsAnArrayOfRecordsNumberedFromTheRequestIndex) {
  for (Shape shape : {Shape::kVisit, Shape::kActivity, Shape::kMetric}) {
    BodyRenderer r = make(std::string(shape_template(shape)), 5, BodyFormat::kArray);
    const std::string body(r.render(3, 1'700'000'000'000'000'000));
    const std::vector<std::string> records = records_of(body, BodyFormat::kArray);
    ASSERT_EQ(records.size(), 5u) << body;
    simdjson::dom::parser parser;
    for (int64_t j = 0; j < 5; ++j) {
      simdjson::dom::element e = parser.parse(records[j]).value();
      EXPECT_EQ(e["seq"].get_int64().value(), 15 + j) << records[j];
      if (shape == Shape::kMetric) {
        EXPECT_TRUE(e["username"].is_string());
        EXPECT_TRUE(e["count"].is_int64());
        EXPECT_TRUE(e["metric"].is_string());
      } else {
        EXPECT_EQ(e["time"].get_int64().value(), 1'700'000'000'000);
      }
    }
  }
}

TEST(BodyTest, NdjsonHasOneRecordPerLine) {
  BodyRenderer r = make(std::string(shape_template(Shape::kActivity)), 4, BodyFormat::kNdjson);
  EXPECT_EQ(r.content_type(), "application/x-ndjson");
  const std::vector<std::string> lines = records_of(r.render(0, 0), BodyFormat::kNdjson);
  simdjson::dom::parser parser;
  ASSERT_EQ(lines.size(), 4u);
  for (int64_t j = 0; j < 4; ++j) {
    simdjson::dom::element e = parser.parse(lines[j]).value();
    EXPECT_EQ(e["seq"].get_int64().value(), j);
    EXPECT_TRUE(e["action"].is_string());
  }
}

TEST(BodyTest, TemplatePlaceholdersAndDeterminismBySeedAndIndex) {
  const std::string tmpl = R"({"n":{{seq}},"c":"{{choice a,b,c}}","t":{{now_s}}})";
  BodyRenderer one = make(tmpl, 2, BodyFormat::kArray, false, 42);
  BodyRenderer two = make(tmpl, 2, BodyFormat::kArray, false, 42);
  const std::string first(one.render(9, 5'000'000'000));
  two.render(1, 0);  // another request before it changes nothing
  EXPECT_EQ(std::string(two.render(9, 5'000'000'000)), first);
  const std::vector<std::string> records = records_of(first, BodyFormat::kArray);
  ASSERT_EQ(records.size(), 2u);
  simdjson::dom::parser parser;
  simdjson::dom::element r0 = parser.parse(records[0]).value();
  EXPECT_EQ(r0["n"].get_int64().value(), 18);
  EXPECT_EQ(r0["t"].get_int64().value(), 5);
  const std::string c(r0["c"].get_string().value());
  EXPECT_NE(records[1].find(R"("n":19,)"), std::string::npos) << records[1];
  EXPECT_TRUE(c == "a" || c == "b" || c == "c") << c;
  // The choices are drawn: over many requests each of them appears.
  std::set<std::string> seen;
  BodyRenderer single = make(R"("{{choice a,b,c}}")", 1, BodyFormat::kNdjson);
  for (uint64_t i = 0; i < 100; ++i) seen.insert(std::string(single.render(i, 0)));
  EXPECT_EQ(seen, (std::set<std::string>{"\"a\"\n", "\"b\"\n", "\"c\"\n"}));
}

TEST(BodyTest, BadTemplateIsRefusedWithAReason) {
  BodyRenderer r;
  std::string error;
  EXPECT_FALSE(r.init({R"({"x":{{nope}}})", 1, BodyFormat::kArray, false, 1}, error));
  EXPECT_NE(error.find("nope"), std::string::npos) << error;
}

TEST(BodyTest, GzipBodiesDecompressToTheSameRecords) {
  const std::string tmpl(shape_template(Shape::kVisit));
  BodyRenderer plain = make(tmpl, 50, BodyFormat::kNdjson);
  BodyRenderer gz = make(tmpl, 50, BodyFormat::kNdjson, true);
  net::Gunzip gunzip;
  std::string out;
  for (uint64_t index : {0, 1, 1000}) {  // the stream is reused from one body to the next
    const std::string expected(plain.render(index, 123'000'000));
    const std::string compressed(gz.render(index, 123'000'000));
    EXPECT_EQ(gz.last_raw_size(), expected.size());
    EXPECT_LT(compressed.size(), expected.size());
    ASSERT_EQ(gunzip.inflate(compressed, 1 << 24, out), net::Gunzip::Result::kOk);
    EXPECT_EQ(out, expected);
  }
}

TEST(BodyTest, ParseShape) {
  EXPECT_EQ(parse_shape("visit"), Shape::kVisit);
  EXPECT_EQ(parse_shape("metric"), Shape::kMetric);
  EXPECT_EQ(parse_shape("template"), Shape::kTemplate);
  EXPECT_FALSE(parse_shape("visits"));
}

}  // namespace
}  // namespace ingestd::loadgen

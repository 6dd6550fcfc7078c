#include "parse/prometheus/prometheus_parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "config/config.h"
#include "fake_context.h"
#include "parse/prometheus/exposition.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::FakeContext;

constexpr ComponentDescriptor kDescriptor = describe<PrometheusParser>(
    Kind::kParser, "prometheus", kPrometheusParserDoc, kPrometheusParserOptions);
constexpr int64_t kScrapeNs = 1'700'000'000'500'000'000;

// An event as one line of text, so that tests compare whole events: its time, then each field as
// key=value in order; strings quoted, integers with an `i`, doubles as fmt prints them (nan, inf).
std::string describe(const Batch& b, const Event& e) {
  std::string out = fmt::format("@{}", e.time_ns);
  for (const Field& f : b.fields(e)) {
    out += fmt::format(" {}=", f.key);
    switch (f.value.type) {
      case Value::Type::kString:
        out += fmt::format("\"{}\"", f.value.s);
        break;
      case Value::Type::kInt:
        out += fmt::format("{}i", f.value.i);
        break;
      case Value::Type::kDouble:
        out += fmt::format("{}", f.value.d);
        break;
      case Value::Type::kRaw:
        out += f.value.s;
        break;
      default:
        out += "?";
    }
  }
  return out;
}

class PrometheusParserTest : public ::testing::Test {
 protected:
  void make(std::string_view yaml) {
    std::vector<config::Error> errors;
    auto options = config::options_from_yaml(kDescriptor, yaml, errors);
    ASSERT_TRUE(options) << (errors.empty() ? "" : errors.front().to_string());
    parser_ = std::make_unique<PrometheusParser>(*options, diag_);
    ASSERT_TRUE(diag_.errors.empty());
    ASSERT_TRUE(parser_->start(ctx_));
  }

  // One record per body, each with the fields a scrape source gives it.
  BatchPtr parse(const std::vector<std::string>& bodies, bool source_fields = false) {
    auto b = std::make_unique<Batch>();
    b->ingest_time_ns = kScrapeNs;
    for (const std::string& body : bodies) {
      Event& e = b->add(b->copy(body), kScrapeNs);
      if (source_fields) {
        b->append_field(e, "url", Value::string("http://h:9100/metrics"));
        b->append_field(e, "scrape_time", Value::integer(kScrapeNs / 1'000'000));
      }
    }
    parser_->parse(ctx_, *b);
    return b;
  }

  std::vector<std::string> events(const std::string& body, bool source_fields = false) {
    BatchPtr b = parse({body}, source_fields);
    std::vector<std::string> out;
    for (const Event& e : b->events()) out.push_back(describe(*b, e));
    return out;
  }

  FakeContext ctx_;
  CollectingDiagnostics diag_;
  std::unique_ptr<PrometheusParser> parser_;
};

std::string at(int64_t ns = kScrapeNs) {
  return fmt::format("@{}", ns);
}

TEST_F(PrometheusParserTest, SamplesWithLabelsTimestampsAndTypes) {
  make("{}");
  const std::string body =
      "# HELP http_requests_total The total number of HTTP requests.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
      "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
      "\n"
      "# A comment that is not HELP or TYPE\n"
      "# TYPE temperature gauge\n"
      "temperature -3.5\n"
      "no_type_line 42\n";
  EXPECT_EQ(events(body),
            (std::vector<std::string>{
                "@1395066363000000000 name=\"http_requests_total\" method=\"post\" code=\"200\" "
                "value=1027 timestamp=1395066363000i type=\"counter\"",
                "@1395066363000000000 name=\"http_requests_total\" method=\"post\" code=\"400\" "
                "value=3 timestamp=1395066363000i type=\"counter\"",
                at() + " name=\"temperature\" value=-3.5 type=\"gauge\"",
                at() + " name=\"no_type_line\" value=42 type=\"untyped\"",
            }));
  EXPECT_EQ(ctx_.count("records"), 1u);
  EXPECT_EQ(ctx_.count("samples"), 4u);
  EXPECT_EQ(ctx_.count("errors"), 0u);
}

TEST_F(PrometheusParserTest, RawBytesAreTheSampleLine) {
  make("{}");
  BatchPtr b = parse({"# TYPE a gauge\n  a{x=\"1\"} 2  \r\nb 3"});
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ(b->events()[0].raw, "a{x=\"1\"} 2");
  EXPECT_EQ(b->events()[1].raw, "b 3");
}

TEST_F(PrometheusParserTest, LabelEscapes) {
  make("{}");
  const std::string body =
      R"(msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9)"
      "\n";
  EXPECT_EQ(events(body),
            (std::vector<std::string>{
                at() + " name=\"msdos_file_access_time_seconds\" path=\"C:\\DIR\\FILE.TXT\" "
                       "error=\"Cannot find file:\n\"FILE.TXT\"\" value=1458255915 "
                       "type=\"untyped\"",
            }));
}

TEST_F(PrometheusParserTest, ValuesNaNInfinitiesAndExponents) {
  make("{}");
  BatchPtr b = parse({"a NaN\nb +Inf\nc -Inf\nd 1e3\ne -1.5E-3\nf .5\ng +7\nh Inf\ni 0x1p-2\n"});
  ASSERT_EQ(b->size(), 9u);
  auto value = [&](size_t i) { return b->find(b->events()[i], "value")->d; };
  EXPECT_TRUE(std::isnan(value(0)));
  EXPECT_EQ(value(1), INFINITY);
  EXPECT_EQ(value(2), -INFINITY);
  EXPECT_EQ(value(3), 1000.0);
  EXPECT_EQ(value(4), -0.0015);
  EXPECT_EQ(value(5), 0.5);
  EXPECT_EQ(value(6), 7.0);
  EXPECT_EQ(value(7), INFINITY);
  EXPECT_EQ(value(8), 0.25);
}

TEST_F(PrometheusParserTest, Histogram) {
  make("{}");
  const std::string body =
      "# TYPE rpc histogram\n"
      "rpc_bucket{le=\"0.05\"} 24054\n"
      "rpc_bucket{le=\"+Inf\"} 144320\n"
      "rpc_sum 53423\n"
      "rpc_count 144320\n";
  EXPECT_EQ(events(body),
            (std::vector<std::string>{
                at() + " name=\"rpc_bucket\" le=\"0.05\" value=24054 type=\"histogram\"",
                at() + " name=\"rpc_bucket\" le=\"+Inf\" value=144320 type=\"histogram\"",
                at() + " name=\"rpc_sum\" value=53423 type=\"histogram\"",
                at() + " name=\"rpc_count\" value=144320 type=\"histogram\"",
            }));
}

TEST_F(PrometheusParserTest, Summary) {
  make("{}");
  const std::string body =
      "# TYPE rpc_seconds summary\n"
      "rpc_seconds{quantile=\"0.5\"} 4773\n"
      "rpc_seconds{quantile=\"0.99\"} NaN\n"
      "rpc_seconds_sum 1.7560473e+07\n"
      "rpc_seconds_count 2693\n";
  EXPECT_EQ(events(body),
            (std::vector<std::string>{
                at() + " name=\"rpc_seconds\" quantile=\"0.5\" value=4773 type=\"summary\"",
                at() + " name=\"rpc_seconds\" quantile=\"0.99\" value=nan type=\"summary\"",
                at() + " name=\"rpc_seconds_sum\" value=17560473 type=\"summary\"",
                at() + " name=\"rpc_seconds_count\" value=2693 type=\"summary\"",
            }));
}

TEST_F(PrometheusParserTest, BlanksInsideBracesAndTrailingComma) {
  make("{}");
  EXPECT_EQ(events("m { a = \"1\" ,\tb=\"2\", } 1\nm{} 2\n"),
            (std::vector<std::string>{
                at() + " name=\"m\" a=\"1\" b=\"2\" value=1 type=\"untyped\"",
                at() + " name=\"m\" value=2 type=\"untyped\"",
            }));
}

TEST_F(PrometheusParserTest, NestedLabels) {
  make("labels: nested");
  EXPECT_EQ(events("m{job=\"api\",name=\"x\"} 1\n"),
            (std::vector<std::string>{
                at() + " name=\"m\" labels.job=\"api\" labels.name=\"x\" value=1 type=\"untyped\"",
            }));
}

TEST_F(PrometheusParserTest, FlatLabelsThatClashAreExported) {
  make("{}");
  EXPECT_EQ(events("m{name=\"n\",value=\"v\",url=\"u\",job=\"j\"} 1\n", true),
            (std::vector<std::string>{
                at() + " name=\"m\" exported_name=\"n\" exported_value=\"v\" exported_url=\"u\" "
                       "job=\"j\" value=1 type=\"untyped\" url=\"http://h:9100/metrics\" "
                       "scrape_time=1700000000500i",
            }));
}

TEST_F(PrometheusParserTest, HelpText) {
  make("help: true");
  EXPECT_EQ(events("# HELP m Line one\\nback\\\\slash \\q\n# TYPE m gauge\nm 1\nother 2\n"),
            (std::vector<std::string>{
                at() + " name=\"m\" value=1 type=\"gauge\" help=\"Line one\nback\\slash \\q\"",
                at() + " name=\"other\" value=2 type=\"untyped\"",
            }));
}

TEST_F(PrometheusParserTest, PerScrapeOneEventHoldsEverySample) {
  make("per: scrape\nhelp: true");
  const std::string body =
      "# HELP up Whether up.\n"
      "# TYPE up gauge\n"
      "up{job=\"a\\\"b\"} 1 1000\n"
      "h_bucket{le=\"+Inf\"} +Inf\n"
      "bad line here\n";
  BatchPtr b = parse({body, ""}, true);
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ(b->events()[0].raw, body);
  EXPECT_EQ(describe(*b, b->events()[0]),
            at() +
                " samples=[{\"name\":\"up\",\"type\":\"gauge\",\"labels\":{\"job\":\"a\\\"b\"},"
                "\"value\":1,\"timestamp\":1000,\"help\":\"Whether up.\"},"
                "{\"name\":\"h_bucket\",\"type\":\"untyped\",\"labels\":{\"le\":\"+Inf\"},"
                "\"value\":\"+Inf\"}] sample_count=2i url=\"http://h:9100/metrics\" "
                "scrape_time=1700000000500i");
  EXPECT_EQ(describe(*b, b->events()[1]),
            at() +
                " samples=[] sample_count=0i url=\"http://h:9100/metrics\" "
                "scrape_time=1700000000500i");
  EXPECT_EQ(ctx_.count("records"), 2u);
  EXPECT_EQ(ctx_.count("samples"), 2u);
  EXPECT_EQ(ctx_.count("errors"), 1u);
}

TEST_F(PrometheusParserTest, SourceFieldsFollowEachSample) {
  make("{}");
  EXPECT_EQ(events("a 1\n", true),
            (std::vector<std::string>{at() + " name=\"a\" value=1 type=\"untyped\" "
                                             "url=\"http://h:9100/metrics\" "
                                             "scrape_time=1700000000500i"}));
}

TEST_F(PrometheusParserTest, SeveralBodiesInOneBatch) {
  make("{}");
  BatchPtr b = parse({"# TYPE a counter\na 1\n", "a 2\n# TYPE a gauge\n", "# TYPE a gauge\na 3"});
  ASSERT_EQ(b->size(), 3u);
  // Types hold for their own body only.
  EXPECT_EQ(b->find(b->events()[0], "type")->s, "counter");
  EXPECT_EQ(b->find(b->events()[1], "type")->s, "untyped");
  EXPECT_EQ(b->find(b->events()[2], "type")->s, "gauge");
  EXPECT_EQ(ctx_.count("errors"), 1u);  // the TYPE after a's sample in the second body
}

// Each bad line, with the reason it is dead-lettered for.
struct BadLine {
  const char* line;
  const char* reason;
};

const BadLine kBadLines[] = {
    {"1abc 1", "invalid metric name"},
    {"a-b 1", "invalid character in the metric name"},
    {"a", "sample without a value"},
    {"a{x=\"1\"}", "sample without a value"},
    {"a one", "value is not a number"},
    {"a 1.2.3", "value is not a number"},
    {"a nan(1)", "value is not a number"},
    {"a --1", "value is not a number"},
    {"a 1e999", "value is not a number"},
    {"a 1 12.5", "timestamp is not an integer (milliseconds)"},
    {"a 1 99999999999999999999", "timestamp is not an integer (milliseconds)"},
    {"a 1 9223372036854775", "timestamp out of range"},
    {"a 1 2 3", "unexpected text after the timestamp"},
    {"a{x=\"1\" 1", "expected ',' or '}' after a label"},
    {"a{x=\"1\"", "labels without their closing '}'"},
    {"a{x=1} 1", "label value without its opening quote"},
    {"a{x=\"1} 1", "unterminated label value"},
    {"a{x=\"\\t\"} 1", "invalid escape in a label value (only \\\\, \\\" and \\n)"},
    {"a{x} 1", "label name not followed by '='"},
    {"a{1x=\"1\"} 1", "invalid label name"},
    {"a{x=\"1\",x=\"2\"} 1", "duplicate label name"},
    {"# TYPE", "TYPE without a metric name"},
    {"# HELP", "HELP without a metric name"},
    {"# TYPE t", "TYPE without a type"},
    {"# TYPE t countr", "unknown metric type (counter, gauge, histogram, summary or untyped)"},
    {"# TYPE t counter extra", "unexpected text after the TYPE line's type"},
    {"# TYPE 9t counter", "invalid metric name"},
};

TEST_F(PrometheusParserTest, EachKindOfBadLineIsDeadLetteredWithItsLineNumber) {
  make("on_error: dead_letter");
  std::string body = "good 1\n";
  for (const BadLine& bad : kBadLines) body += std::string(bad.line) + "\n";
  body += "good 2\n";
  BatchPtr b = parse({body});
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ(b->find(b->events()[1], "value")->d, 2.0);
  ASSERT_EQ(ctx_.dead_letters.size(), std::size(kBadLines));
  for (size_t i = 0; i < std::size(kBadLines); ++i) {
    EXPECT_EQ(ctx_.dead_letters[i].first, kBadLines[i].line);
    EXPECT_EQ(ctx_.dead_letters[i].second, fmt::format("line {}: {}", i + 2, kBadLines[i].reason));
  }
  EXPECT_EQ(ctx_.count("errors"), std::size(kBadLines));
  EXPECT_EQ(ctx_.count("samples"), 2u);
  EXPECT_EQ(ctx_.logs.size(), 1u);  // logged once, not per line
}

TEST_F(PrometheusParserTest, FamilyRulesAreChecked) {
  make("on_error: dead_letter");
  const std::string body =
      "# HELP h one\n"
      "# HELP h two\n"
      "# TYPE h histogram\n"
      "# TYPE h gauge\n"
      "h_bucket 1\n"
      "h_bucket{le=\"x\"} 1\n"
      "h_bucket{le=\"1\"} 1\n"
      "# TYPE s summary\n"
      "s 1\n"
      "s{quantile=\"high\"} 1\n"
      "s{quantile=\"0.9\"} 1\n"
      "late 1\n"
      "# TYPE late gauge\n";
  BatchPtr b = parse({body});
  EXPECT_EQ(b->size(), 3u);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"# HELP h two", "line 2: second HELP line for h"},
      {"# TYPE h gauge", "line 4: second TYPE line for h"},
      {"h_bucket 1", "line 5: histogram bucket without an le label"},
      {"h_bucket{le=\"x\"} 1", "line 6: histogram bucket whose le label is not a number"},
      {"s 1", "line 9: summary quantile without a quantile label"},
      {"s{quantile=\"high\"} 1", "line 10: summary quantile whose quantile label is not a number"},
      {"# TYPE late gauge", "line 13: TYPE line for late after its samples"},
  };
  EXPECT_EQ(ctx_.dead_letters, expected);
}

TEST_F(PrometheusParserTest, BadLinesAreDroppedByDefault) {
  make("{}");
  BatchPtr b = parse({"a{ 1\nb 2\n"});
  EXPECT_EQ(b->size(), 1u);
  EXPECT_EQ(ctx_.count("errors"), 1u);
  EXPECT_TRUE(ctx_.dead_letters.empty());
}

TEST_F(PrometheusParserTest, ALostDeadLetterFailsTheAcks) {
  make("on_error: dead_letter");
  ctx_.dead_letter_ok = false;
  bool acked = true;
  auto b = std::make_unique<Batch>();
  b->acks.push_back(AckRef::make([&](bool ok) { acked = ok; }));
  b->add(b->copy("bad{ 1\n"), kScrapeNs);
  parser_->parse(ctx_, *b);
  b.reset();
  EXPECT_FALSE(acked);
}

TEST_F(PrometheusParserTest, ValuesWithoutEscapesAreViewsIntoTheBody) {
  make("{}");
  BatchPtr b = parse({"m{a=\"plain\",b=\"esc\\\\\"} 1"});
  const Event& e = b->events()[0];
  auto inside = [&](std::string_view s) {
    return s.data() >= e.raw.data() && s.data() + s.size() <= e.raw.data() + e.raw.size();
  };
  EXPECT_TRUE(inside(b->find(e, "a")->s));
  EXPECT_TRUE(inside(b->find(e, "name")->s));
  EXPECT_FALSE(inside(b->find(e, "b")->s));
  EXPECT_EQ(b->find(e, "b")->s, "esc\\");
}

TEST_F(PrometheusParserTest, EmptyAndCommentOnlyBodiesGiveNoSamples) {
  make("{}");
  EXPECT_TRUE(events("").empty());
  EXPECT_TRUE(events("\n\n# just a comment\n#\n").empty());
  EXPECT_EQ(ctx_.count("errors"), 0u);
  EXPECT_EQ(ctx_.count("records"), 2u);
}

TEST_F(PrometheusParserTest, ManyBatchesReuseTheParser) {
  make("labels: nested");
  std::string body;
  for (int i = 0; i < 500; ++i) body += fmt::format("m{{i=\"{}\",k=\"v\"}} {}\n", i, i);
  for (int round = 0; round < 3; ++round) {
    BatchPtr b = parse({body, body});
    ASSERT_EQ(b->size(), 1000u);
    EXPECT_EQ(b->find(b->events()[999], "value")->d, 499.0);
    EXPECT_EQ(b->find(b->events()[999], "labels.i")->s, "499");
  }
}

TEST(PrometheusLineParserTest, ParseValueFollowsGo) {
  double v = 0;
  for (const char* ok : {"0", "-0", "1.5", "+1.5", "1e10", "1E-10", ".5", "5.", "NaN", "nan",
                         "+Inf", "-inf", "Infinity", "0x1p4"})
    EXPECT_TRUE(prometheus::parse_value(ok, v)) << ok;
  for (const char* bad :
       {"", "+", "-", "e5", "1e", "0x10", "nan(1)", "infin", "1_000", "++1", " 1", "1 "})
    EXPECT_FALSE(prometheus::parse_value(bad, v)) << bad;
}

TEST(PrometheusParserOptionsTest, SchemaRejectsBadOptions) {
  std::vector<config::Error> errors;
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "per: batch", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "labels: deep", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "on_error: ignore", errors));
  EXPECT_EQ(errors.size(), 3u);
}

TEST(PrometheusParserOptionsTest, EveryOptionHasADoc) {
  for (const OptionSpec& spec : kPrometheusParserOptions)
    EXPECT_GT(std::strlen(spec.doc), 20u) << spec.name;
}

}  // namespace
}  // namespace ingestd::plugins

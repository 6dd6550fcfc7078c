#include "report.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace ingestd::loadgen {
namespace {

TEST(ReportTest, JsonCarriesTheCountsRatesAndPercentiles) {
  LoadResult r;
  for (uint64_t ms = 1; ms <= 100; ++ms) r.latency.record(ms * 1'000'000);  // 1..100 ms in ns
  r.statuses[202] = 90;
  r.statuses[503] = 10;
  r.answered = 100;
  r.ok = 90;
  r.ok_records = 900;
  r.body_bytes = 4000;
  r.raw_bytes = 20000;
  r.connect_errors = 2;
  r.timeouts = 1;
  r.connections_opened = 4;
  r.seconds = 2.0;
  const std::string json = format_json(r);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  simdjson::dom::parser parser;
  simdjson::dom::element e = parser.parse(json).value();
  EXPECT_EQ(e["requests"].get_uint64().value(), 100u);
  EXPECT_EQ(e["ok"].get_uint64().value(), 90u);
  EXPECT_DOUBLE_EQ(e["requests_per_s"].get_double().value(), 50.0);
  EXPECT_EQ(e["records"].get_uint64().value(), 900u);
  EXPECT_DOUBLE_EQ(e["records_per_s"].get_double().value(), 450.0);
  EXPECT_DOUBLE_EQ(e["bytes_per_s"].get_double().value(), 2000.0);
  EXPECT_EQ(e["raw_bytes"].get_uint64().value(), 20000u);
  // Values below 256 ns are exact; above, within 1/256: p50 of 1..100 ms is 50 ms.
  EXPECT_NEAR(e["latency_us"]["p50"].get_double().value(), 50'000, 50'000 / 256.0);
  EXPECT_NEAR(e["latency_us"]["p99"].get_double().value(), 99'000, 99'000 / 256.0);
  EXPECT_DOUBLE_EQ(e["latency_us"]["max"].get_double().value(), 100'000);
  EXPECT_DOUBLE_EQ(e["latency_us"]["min"].get_double().value(), 1'000);
  EXPECT_EQ(e["statuses"]["202"].get_uint64().value(), 90u);
  EXPECT_EQ(e["statuses"]["503"].get_uint64().value(), 10u);
  EXPECT_EQ(e["errors"]["connect"].get_uint64().value(), 2u);
  EXPECT_EQ(e["errors"]["timeout"].get_uint64().value(), 1u);
  EXPECT_EQ(e["errors"]["io"].get_uint64().value(), 0u);
  EXPECT_EQ(e["connections_opened"].get_uint64().value(), 4u);
}

TEST(ReportTest, AnEmptyRunIsValidJsonAndText) {
  const LoadResult r;
  simdjson::dom::parser parser;
  simdjson::dom::element e = parser.parse(format_json(r)).value();
  EXPECT_EQ(e["requests"].get_uint64().value(), 0u);
  EXPECT_EQ(e["statuses"].get_object().value().size(), 0u);
  EXPECT_DOUBLE_EQ(e["requests_per_s"].get_double().value(), 0.0);
  EXPECT_NE(format_text(r).find("status      none"), std::string::npos) << format_text(r);
}

}  // namespace
}  // namespace ingestd::loadgen

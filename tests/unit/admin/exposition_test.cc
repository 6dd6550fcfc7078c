// The Prometheus text format 0.0.4 and OpenMetrics 1.0 output, against hand-written expectations.
#include "admin/exposition.h"

#include <gtest/gtest.h>

namespace ingestd::admin {
namespace {

using runtime::Family;
using runtime::Histogram;
using runtime::MetricType;

// Built by initialization: GCC 12 at -O3 warns (-Wrestrict, falsely) on assigning a short
// literal to a std::string member.
Family family(std::string name, std::string help, MetricType type) {
  return Family{std::move(name), std::move(help), type, {}};
}

Family counter(std::string name, std::string help, runtime::Labels labels, double v) {
  Family f = family(std::move(name), std::move(help), MetricType::kCounter);
  f.samples.push_back({std::move(labels), v, {}});
  return f;
}

TEST(Exposition, CounterInTextFormatNamesItsSamplesTotal) {
  std::string text =
      render({counter("ingestd_x", "Things done.", {{"component", "gen"}}, 42)}, Format::kText);
  EXPECT_EQ(text,
            "# HELP ingestd_x_total Things done.\n"
            "# TYPE ingestd_x_total counter\n"
            "ingestd_x_total{component=\"gen\"} 42\n");
}

TEST(Exposition, OpenMetricsDeclaresTheFamilyWithoutTotalAndEnds) {
  std::string text = render({counter("ingestd_x", "Things done.", {{"component", "gen"}}, 42)},
                            Format::kOpenMetrics);
  EXPECT_EQ(text,
            "# HELP ingestd_x Things done.\n"
            "# TYPE ingestd_x counter\n"
            "ingestd_x_total{component=\"gen\"} 42\n"
            "# EOF\n");
}

TEST(Exposition, LabelValuesAndHelpAreEscaped) {
  Family f = family("g", "a \\ backslash\nand a \"quote\"", MetricType::kGauge);
  f.samples.push_back({{{"path", "C:\\dir\n\"x\""}}, 1.5, {}});
  EXPECT_EQ(render({f}, Format::kText),
            "# HELP g a \\\\ backslash\\nand a \"quote\"\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\dir\\n\\\"x\\\"\"} 1.5\n");
  // OpenMetrics escapes the quote in HELP too.
  std::string om = render({f}, Format::kOpenMetrics);
  EXPECT_EQ(om.substr(0, om.find('\n') + 1), "# HELP g a \\\\ backslash\\nand a \\\"quote\\\"\n");
}

TEST(Exposition, SpecialValues) {
  Family f = family("g", "h", MetricType::kGauge);
  f.samples.push_back({{{"v", "a"}}, std::numeric_limits<double>::infinity(), {}});
  f.samples.push_back({{{"v", "b"}}, -std::numeric_limits<double>::infinity(), {}});
  f.samples.push_back({{{"v", "c"}}, std::nan(""), {}});
  f.samples.push_back({{{"v", "d"}}, 0.25, {}});
  f.samples.push_back({{}, 1e20, {}});
  EXPECT_EQ(render({f}, Format::kText),
            "# HELP g h\n# TYPE g gauge\n"
            "g{v=\"a\"} +Inf\ng{v=\"b\"} -Inf\ng{v=\"c\"} NaN\ng{v=\"d\"} 0.25\ng 1e+20\n");
}

TEST(Exposition, HistogramBucketsAreCumulativeAndEndInInf) {
  Histogram h({1'000'000, 10'000'000});  // 1 ms, 10 ms
  h.observe_ns(500'000);                 // 0.5 ms: first bucket
  h.observe_ns(1'000'000);               // exactly 1 ms: le="0.001" holds it
  h.observe_ns(5'000'000);               // second
  h.observe_ns(2'000'000'000);           // beyond: +Inf only
  Family f = family("lat_seconds", "Latency.", MetricType::kHistogram);
  f.samples.push_back({{{"component", "p"}}, 0, h.snapshot()});
  EXPECT_EQ(render({f}, Format::kText),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{component=\"p\",le=\"0.001\"} 2\n"
            "lat_seconds_bucket{component=\"p\",le=\"0.01\"} 3\n"
            "lat_seconds_bucket{component=\"p\",le=\"+Inf\"} 4\n"
            "lat_seconds_sum{component=\"p\"} 2.0065\n"
            "lat_seconds_count{component=\"p\"} 4\n");
}

TEST(Exposition, FamiliesOfOneNameAreMergedAndEmptyOnesLeftOut) {
  Family empty = family("nothing", "h", MetricType::kGauge);
  std::string text = render(
      {counter("a", "first", {{"k", "1"}}, 1), empty, counter("a", "second", {{"k", "2"}}, 2)},
      Format::kText);
  EXPECT_EQ(text,
            "# HELP a_total first\n# TYPE a_total counter\n"
            "a_total{k=\"1\"} 1\na_total{k=\"2\"} 2\n");
}

TEST(Exposition, NamedCountersBecomeFamiliesWithAComponentLabel) {
  auto families = counter_families({
      {"gen.events_out", 10},
      {"json.events_in", 10},
      {"json.queue_dropped", 3},
      {"kafka.breaker_opened", 2},
      {"kafka.retries", 7},
      {"web.requests./api/visit/v1/.200", 5},
      {"json.parsed", 9},
  });
  std::string text = render(families, Format::kText);
  EXPECT_NE(text.find("ingestd_component_events_out_total{component=\"gen\"} 10\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ingestd_component_events_in_total{component=\"json\"} 10\n"),
            std::string::npos);
  EXPECT_NE(
      text.find("ingestd_component_dropped_events_total{component=\"json\",reason=\"queue_full\"} "
                "3\n"),
      std::string::npos);
  EXPECT_NE(text.find("ingestd_sink_breaker_transitions_total{sink=\"kafka\",to=\"open\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("ingestd_sink_retries_total{sink=\"kafka\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("ingestd_http_source_requests_total{component=\"web\",route=\"/api/visit/"
                      "v1/\",status=\"200\"} 5\n"),
            std::string::npos);
  EXPECT_NE(text.find("ingestd_component_stat_total{component=\"json\",name=\"parsed\"} 9\n"),
            std::string::npos);
  // Sorted by family name, each with HELP.
  for (size_t i = 1; i < families.size(); ++i) EXPECT_LT(families[i - 1].name, families[i].name);
  for (const auto& f : families) EXPECT_FALSE(f.help.empty()) << f.name;
}

TEST(Exposition, Negotiation) {
  EXPECT_EQ(negotiate(""), Format::kText);
  EXPECT_EQ(negotiate("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), Format::kText);
  EXPECT_EQ(negotiate("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
            Format::kOpenMetrics);
  EXPECT_EQ(content_type(Format::kText), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(content_type(Format::kOpenMetrics),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

}  // namespace
}  // namespace ingestd::admin

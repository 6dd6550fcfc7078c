#include "top.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

namespace ingestd::ctl {
namespace {

// A GetStatus reply as the daemon writes it (docs/operations.md), at `uptime` seconds, with the
// generator having produced `gen_out` events and the sink `sink_out`.
std::string status_json(double uptime, uint64_t gen_out, uint64_t sink_out,
                        const std::string& sink_extra = "") {
  return R"({"state":"running","version":"1.2.3","config_path":"/etc/ingestd/pipeline.yaml",)"
         R"("log_level":"info","pid":4242,"uptime_seconds":)" +
         std::to_string(uptime) +
         R"(,"admin":null,"components":[)"
         R"({"name":"out","kind":"sink","type":"file","breaker":"closed",)"
         R"("breaker_not_closed_seconds":0.000,"events_in":)" +
         std::to_string(sink_out) + R"(,"events_out":)" + std::to_string(sink_out) +
         R"(,"state":"running","queue":{"batches":3,"max_batches":12,"bytes":100,)"
         R"("max_bytes":1000},"counters":{"events_in":1,"failed":2,"dead_letters":1,)"
         R"("queue_dropped":5})" +
         sink_extra +
         R"(},)"
         R"({"name":"gen","kind":"source","type":"generator","events_out":)" +
         std::to_string(gen_out) +
         R"(,"state":"running","counters":{"events":7}},)"
         R"({"name":"events","kind":"parser","type":"json","events_in":0,"events_out":0,)"
         R"("state":"stalled","queue":{"batches":0,"max_batches":8,"bytes":900,)"
         R"("max_bytes":1000},"counters":{"errors":3,"shutdown_dropped":4}}],)"
         R"("last_reload":{"ok":true,"message":"applied","finished_realtime_ns":)"
         R"(1767323045000000000,"errors":[]}})";
}

StatusSnapshot parsed(const std::string& json) {
  StatusSnapshot s;
  std::string error;
  EXPECT_TRUE(parse_status(json, s, error)) << error;
  return s;
}

const ComponentRates& row(const std::vector<ComponentRates>& rows, const std::string& name) {
  for (const auto& r : rows)
    if (r.now->name == name) return r;
  ADD_FAILURE() << "no row for " << name;
  return rows.front();
}

TEST(TopParse, ReadsEveryField) {
  StatusSnapshot s = parsed(status_json(10.5, 100, 90,
                                        R"(,"spool_events":40,"spool_bytes":)"
                                        R"(2048,"spool_records":2,)"
                                        R"("spool_oldest_realtime_ns":0)"));
  EXPECT_EQ(s.state, "running");
  EXPECT_EQ(s.version, "1.2.3");
  EXPECT_EQ(s.pid, 4242);
  EXPECT_DOUBLE_EQ(s.uptime_seconds, 10.5);
  EXPECT_EQ(s.last_reload, "ok at 2026-01-02T03:04:05Z: applied");
  ASSERT_EQ(s.components.size(), 3u);
  const ComponentStatus& out = s.components[0];
  EXPECT_EQ(out.kind, "sink");
  EXPECT_EQ(out.breaker, "closed");
  EXPECT_TRUE(out.has_queue);
  EXPECT_EQ(out.queue_max_batches, 12u);
  EXPECT_TRUE(out.spooling);
  EXPECT_EQ(out.spool_bytes, 2048u);
  EXPECT_EQ(out.spool_records, 2u);
  EXPECT_EQ(drops(out), 5u);
  EXPECT_EQ(errors(out), 3u);  // failed + dead_letters
  const ComponentStatus& gen = s.components[1];
  EXPECT_FALSE(gen.events_in.has_value());
  EXPECT_FALSE(gen.has_queue);
  EXPECT_EQ(drops(s.components[2]), 4u);
  EXPECT_EQ(errors(s.components[2]), 3u);
}

TEST(TopParse, RefusesWhatIsNotAStatus) {
  StatusSnapshot s;
  std::string error;
  EXPECT_FALSE(parse_status("not json", s, error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(parse_status("[1,2]", s, error));
}

TEST(TopParse, AnOlderStatusWithBareNamesStillParses) {
  StatusSnapshot s = parsed(R"({"state":"running","components":["a","b"]})");
  ASSERT_EQ(s.components.size(), 2u);
  EXPECT_EQ(s.components[1].name, "b");
  EXPECT_EQ(s.last_reload, "none");
}

TEST(TopRates, AreCounterDeltasOverTheDaemonsUptime) {
  StatusSnapshot a = parsed(status_json(10.0, 1000, 500));
  StatusSnapshot b = parsed(status_json(12.0, 1400, 700));
  auto rows = compute_rates(&a, b);
  const auto& gen = row(rows, "gen");
  ASSERT_TRUE(gen.out_per_second.has_value());
  EXPECT_DOUBLE_EQ(*gen.out_per_second, 200.0);
  EXPECT_FALSE(gen.in_per_second.has_value());  // a source has no input
  const auto& out = row(rows, "out");
  EXPECT_DOUBLE_EQ(*out.in_per_second, 100.0);
  EXPECT_DOUBLE_EQ(*out.out_per_second, 100.0);
}

TEST(TopRates, NoEarlierSampleOrACounterThatWentDownHasNoRate) {
  StatusSnapshot a = parsed(status_json(100.0, 5000, 500));
  StatusSnapshot b = parsed(status_json(1.0, 10, 5));  // the daemon restarted
  for (const auto& r : compute_rates(nullptr, b)) EXPECT_FALSE(r.out_per_second.has_value());
  EXPECT_FALSE(row(compute_rates(&a, b), "gen").out_per_second.has_value());
}

TEST(TopRates, ComponentNewInTheLaterSampleHasNoRate) {
  StatusSnapshot a = parsed(status_json(10.0, 1000, 500));
  a.components.erase(a.components.begin());  // no "out" before
  StatusSnapshot b = parsed(status_json(11.0, 1100, 600));
  auto rows = compute_rates(&a, b);
  EXPECT_FALSE(row(rows, "out").in_per_second.has_value());
  EXPECT_DOUBLE_EQ(*row(rows, "gen").out_per_second, 100.0);
}

TEST(TopRates, QueueFillIsTheFullerOfBatchesAndBytes) {
  const StatusSnapshot now = parsed(status_json(1, 0, 0));  // the rows point into it
  auto rows = compute_rates(nullptr, now);
  EXPECT_DOUBLE_EQ(*row(rows, "out").queue_fill, 0.25);    // 3/12 batches > 100/1000 bytes
  EXPECT_DOUBLE_EQ(*row(rows, "events").queue_fill, 0.9);  // 900/1000 bytes > 0/8 batches
  EXPECT_FALSE(row(rows, "gen").queue_fill.has_value());
}

TEST(TopRates, RowsGoInPipelineOrder) {
  const StatusSnapshot now = parsed(status_json(1, 0, 0));  // the rows point into it
  auto rows = compute_rates(nullptr, now);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].now->name, "gen");
  EXPECT_EQ(rows[1].now->name, "events");
  EXPECT_EQ(rows[2].now->name, "out");
}

TEST(TopFormat, HumanNumbersFitSixColumns) {
  EXPECT_EQ(human(0), "0");
  EXPECT_EQ(human(2.5), "2.5");
  EXPECT_EQ(human(200), "200");
  EXPECT_EQ(human(9999), "9999");
  EXPECT_EQ(human(12345), "12.3k");
  EXPECT_EQ(human(456789), "457k");
  EXPECT_EQ(human(4560000), "4.6M");
  EXPECT_EQ(human(3e9), "3.0G");
  for (double v : {0.0, 1.5, 99999.0, 999999.0, 1e12, 9.99e14}) EXPECT_LE(human(v).size(), 6u);
  EXPECT_EQ(human_duration(42), "42s");
  EXPECT_EQ(human_duration(187), "3m07s");
  EXPECT_EQ(human_duration(5 * 3600 + 120), "5h02m");
  EXPECT_EQ(human_duration(2 * 86400 + 4 * 3600), "2d04h");
  EXPECT_EQ(fit("abcdef", 6), "abcdef");
  EXPECT_EQ(fit("abcdefg", 6), "abcde~");
}

std::vector<std::string> screen(int width, const std::string& sink_extra = "") {
  StatusSnapshot a = parsed(status_json(10.0, 1000, 500, sink_extra));
  StatusSnapshot b = parsed(status_json(12.0, 1400, 700, sink_extra));
  return render_top(&a, b, 2.0, width);
}

std::string find_line(const std::vector<std::string>& lines, const std::string& start) {
  for (const auto& l : lines)
    if (l.rfind(start, 0) == 0) return l;
  ADD_FAILURE() << "no line starts with '" << start << "'";
  return "";
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while ((i = line.find_first_not_of(' ', i)) != std::string::npos) {
    size_t j = line.find(' ', i);
    out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

TEST(TopRender, ShowsHeaderRatesFillDropsAndErrors) {
  auto lines = screen(80);
  EXPECT_EQ(lines[0].rfind("ingestd 1.2.3  running  up 12s  pid 4242", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1], "config: /etc/ingestd/pipeline.yaml");
  EXPECT_EQ(lines[2], "last reload: ok at 2026-01-02T03:04:05Z: applied");
  EXPECT_EQ(
      words(find_line(lines, "gen ")),
      (std::vector<std::string>{"gen", "src", "generator", "running", "-", "200", "-", "0", "0"}));
  EXPECT_EQ(
      words(find_line(lines, "events ")),
      (std::vector<std::string>{"events", "parse", "json", "stalled", "0", "0", "90%", "4", "3"}));
  EXPECT_EQ(
      words(find_line(lines, "out ")),
      (std::vector<std::string>{"out", "sink", "file", "running", "100", "100", "25%", "5", "3"}));
}

TEST(TopRender, SinksShowBreakerAndSpool) {
  auto lines = screen(80, R"(,"spool_events":40,"spool_bytes":3145728,"spool_records":2,)"
                          R"("spool_oldest_realtime_ns":0)");
  find_line(lines, "SINK ");
  auto sink = words(lines.back());
  EXPECT_EQ(sink, (std::vector<std::string>{"out", "closed", "-", "3.0MiB", "2", "40"}));

  std::string open = R"(,"spool_events":0,"spool_bytes":0,"spool_records":0)";
  StatusSnapshot s = parsed(status_json(1, 0, 0, open));
  s.components[0].breaker = "half_open";
  s.components[0].breaker_not_closed_seconds = 75;
  auto lines2 = render_top(nullptr, s, 1, 80);
  EXPECT_EQ(words(lines2.back()),
            (std::vector<std::string>{"out", "half_open", "1m15s", "0B", "0", "0"}));
}

TEST(TopRender, ASinkWithoutASpoolShowsDashes) {
  auto lines = screen(80);
  EXPECT_EQ(words(lines.back()), (std::vector<std::string>{"out", "closed", "-", "-", "-", "-"}));
}

TEST(TopRender, EveryLineFitsTheWidthAndLongNamesAreCut) {
  StatusSnapshot s = parsed(status_json(1, 0, 0));
  s.components[1].name = "a_source_with_a_really_very_long_name_indeed";
  s.config_path = "/a/very/long/path/" + std::string(100, 'x') + ".yaml";
  for (int width : {40, 60, 80, 120, 200}) {
    auto lines = render_top(nullptr, s, 1, width);
    for (const auto& l : lines) EXPECT_LE(l.size(), static_cast<size_t>(width)) << l;
  }
  auto lines = render_top(nullptr, s, 1, 80);
  std::string gen = find_line(lines, "a_source_with");
  EXPECT_EQ(words(gen)[0], "a_source_with_a_re~");  // 80 columns leave 19 for the name
  EXPECT_EQ(words(gen)[1], "src");                  // the columns after it stay aligned
  EXPECT_EQ(gen.find(" src "), find_line(lines, "NAME").find(" KIND"));
  EXPECT_EQ(find_line(lines, "config: ").size(), 80u);
  EXPECT_EQ(find_line(lines, "config: ").back(), '~');
  // A wide terminal gives the name room.
  EXPECT_EQ(words(find_line(render_top(nullptr, s, 1, 120), "a_source"))[0],
            "a_source_with_a_really_very_lon~");
}

TEST(TopJson, IsOneObjectWithRates) {
  StatusSnapshot a = parsed(status_json(10.0, 1000, 500));
  StatusSnapshot b = parsed(status_json(12.0, 1400, 700));
  std::string json = top_json(&a, b, 2.0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  simdjson::dom::array components;
  ASSERT_EQ(doc["components"].get(components), simdjson::SUCCESS);
  ASSERT_EQ(components.size(), 3u);
  simdjson::dom::element gen = components.at(0);
  EXPECT_EQ(std::string_view(gen["name"]), "gen");
  EXPECT_DOUBLE_EQ(double(gen["events_out_per_second"]), 200.0);
  EXPECT_TRUE(gen["events_in_per_second"].is_null());
  simdjson::dom::element out = components.at(2);
  EXPECT_EQ(std::string_view(out["breaker"]), "closed");
  EXPECT_EQ(uint64_t(out["dropped"]), 5u);
  EXPECT_DOUBLE_EQ(double(out["queue_fill"]), 0.25);
}

}  // namespace
}  // namespace ingestd::ctl

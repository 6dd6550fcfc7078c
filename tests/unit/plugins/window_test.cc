#include "aggregate/window/window_aggregator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "fake_context.h"
#include "ingestd/json.h"
#include "shared/state/state_file.h"
#include "xxhash.h"

namespace ingestd::plugins {
namespace {

using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::CollectingOutput;
using ingestd::testing::FakeContext;

constexpr ComponentDescriptor kDescriptor = describe<WindowAggregator>(
    Kind::kAggregator, "window", kWindowAggregatorDoc, kWindowAggregatorOptions);

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
// 2018-01-08T21:02:30Z: a multiple of 10 s.
constexpr int64_t kBase = 1'515'445'350 * kSec;

// RFC 3339 text of a time, through the C library rather than the plugin's formatter.
std::string rfc3339(int64_t ns) {
  time_t seconds = static_cast<time_t>(ns / kSec - (ns % kSec < 0 ? 1 : 0));
  int64_t ms = ((ns % kSec + kSec) % kSec) / kMs;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf, n) + fmt::format(".{:03}Z", ms);
}

struct In {
  int64_t time_ns;
  std::vector<std::pair<std::string, Value>> fields;
};

Value S(std::string_view s) {
  return Value::string(s);
}
Value I(int64_t i) {
  return Value::integer(i);
}
Value D(double d) {
  return Value::number(d);
}

void expect_double(const Value& v, double d) {
  ASSERT_EQ(v.type, Value::Type::kDouble);
  EXPECT_EQ(v.d, d);
}

class WindowTest : public ::testing::Test {
 protected:
  void make(std::string_view yaml) {
    std::vector<config::Error> errors;
    auto options = config::options_from_yaml(kDescriptor, yaml, errors);
    ASSERT_TRUE(options) << (errors.empty() ? "" : errors.front().to_string());
    agg_ = std::make_unique<WindowAggregator>(*options, diag_);
    ASSERT_TRUE(diag_.errors.empty())
        << diag_.errors.front().first << ": " << diag_.errors.front().second;
    ASSERT_TRUE(agg_->start(ctx_));
  }

  // Builds a batch, consumes it, then scribbles over and frees its bytes: the aggregator must
  // not keep views into its input.
  void consume(const std::vector<In>& events, AckRef ack = {}, const Origin& origin = {}) {
    auto b = std::make_unique<Batch>();
    b->origin = origin;
    std::vector<std::string_view> copies;
    for (const In& in : events) {
      Event& e = b->add(b->copy("{}"), in.time_ns);
      for (const auto& [key, value] : in.fields) {
        Value v = value;
        if (v.type == Value::Type::kString || v.type == Value::Type::kRaw) {
          v.s = b->copy(v.s);
          copies.push_back(v.s);
        }
        std::string_view k = b->copy(key);
        copies.push_back(k);
        b->append_field(e, k, v);
      }
    }
    if (ack.holds()) b->acks.push_back(std::move(ack));
    agg_->consume(ctx_, *b);
    for (std::string_view s : copies) std::memset(const_cast<char*>(s.data()), '#', s.size());
  }

  void advance(int64_t now) { agg_->advance(ctx_, out_, now); }
  void flush() { agg_->flush(ctx_, out_); }

  // The emitted events, each as a flat JSON object (the SDK's serializer), in output order.
  std::vector<std::string> rows() const {
    std::vector<std::string> out;
    for (const BatchPtr& b : out_.batches)
      for (const Event& e : b->events()) {
        std::string line;
        json::append_fields(line, *b, e);
        out.push_back(line);
      }
    return out;
  }

  const Value& cell(size_t row, std::string_view key) const {
    static const Value kMissing = Value::string("<missing>");
    for (const BatchPtr& b : out_.batches) {
      if (row < b->size()) {
        const Value* v = b->find(b->events()[row], key);
        return v ? *v : kMissing;
      }
      row -= b->size();
    }
    ADD_FAILURE() << "no row " << row;
    return kMissing;
  }

  FakeContext ctx_;
  CollectingDiagnostics diag_;
  CollectingOutput out_;
  std::unique_ptr<WindowAggregator> agg_;
};

std::string window_fields(int64_t start, int64_t size) {
  return fmt::format(R"("window_start":"{}","window_end":"{}")", rfc3339(start),
                     rfc3339(start + size));
}

TEST_F(WindowTest, ProcessingTimeWindowClosesWhenTheClockPassesItsEnd) {
  make("window: {size: 1s}\ngroup_by: [device]");
  auto& clock = ctx_.fake_clock();
  clock.set(kBase + 200 * kMs);
  consume({{0, {{"device", S("tv")}}}, {0, {{"device", S("box")}}}, {0, {{"device", S("tv")}}}});
  advance(kBase + 500 * kMs);
  clock.set(kBase + 999 * kMs);
  consume({{0, {{"device", S("tv")}}}});
  advance(kBase + kSec - 1);
  EXPECT_TRUE(out_.batches.empty());

  advance(kBase + kSec);  // exactly the end
  std::string w = window_fields(kBase, kSec);
  EXPECT_EQ(rows(), (std::vector<std::string>{"{" + w + R"(,"device":"box","count":1})",
                                              "{" + w + R"(,"device":"tv","count":3})"}));
  for (const Event& e : out_.batches[0]->events()) {
    EXPECT_EQ(e.time_ns, kBase);
    EXPECT_TRUE(e.raw.empty());
  }
  EXPECT_EQ(ctx_.count("windows"), 2u);

  clock.set(kBase + kSec + 1);
  consume({{0, {{"device", S("tv")}}}});
  advance(kBase + 2 * kSec - 1);
  EXPECT_EQ(rows().size(), 2u);
  flush();
  EXPECT_EQ(rows().back(),
            "{" + window_fields(kBase + kSec, kSec) + R"(,"device":"tv","count":1})");
}

TEST_F(WindowTest, ProcessingTimeUsesTheClockNotTheEventTime) {
  make("window: {size: 10s}");
  ctx_.fake_clock().set(kBase + 3 * kSec);
  consume({{kBase - 100 * kSec, {}}, {kBase + 100 * kSec, {}}});
  flush();
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"{" + window_fields(kBase, 10 * kSec) + R"(,"count":2})"}));
}

TEST_F(WindowTest, ProcessingTimeEventsBehindTheLastAdvanceJoinTheOpenWindow) {
  make("window: {size: 1s}");
  ctx_.fake_clock().set(kBase);
  consume({{0, {}}});
  advance(kBase + 5 * kSec + 1);            // closes [base, base+1s)
  ctx_.fake_clock().set(kBase + 2 * kSec);  // the wall clock stepped back
  consume({{0, {}}, {0, {}}});
  flush();
  EXPECT_EQ(rows(), (std::vector<std::string>{
                        "{" + window_fields(kBase, kSec) + R"(,"count":1})",
                        "{" + window_fields(kBase + 5 * kSec, kSec) + R"(,"count":2})"}));
  EXPECT_EQ(ctx_.count("late"), 0u);
}

TEST_F(WindowTest, EventTimeWatermarkWithLateness) {
  make("window: {size: 10s, time: event, allowed_lateness: 5s}");
  consume({{kBase + 1 * kSec, {}}, {kBase + 12 * kSec, {}}});  // watermark base+7s
  advance(kBase + 1000 * kSec);  // the wall clock does not matter in event time
  EXPECT_TRUE(out_.batches.empty());
  consume({{kBase + 3 * kSec, {}}});   // window end base+10s > watermark: still counted
  consume({{kBase + 15 * kSec, {}}});  // watermark base+10s: exactly the end of the first window
  consume({{kBase + 10 * kSec - 1, {}}});  // its window has closed: late
  advance(0);
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"{" + window_fields(kBase, 10 * kSec) + R"(,"count":2})"}));
  consume({{kBase + 10 * kSec, {}}});  // first instant of the open window
  flush();
  EXPECT_EQ(rows().back(), "{" + window_fields(kBase + 10 * kSec, 10 * kSec) + R"(,"count":3})");
  EXPECT_EQ(ctx_.count("late"), 1u);
}

TEST_F(WindowTest, AFutureEventDoesNotMoveTheWatermarkPastMaxFuture) {
  make("window: {size: 10s, time: event, max_future: 1m}");
  const int64_t now = ctx_.clock().now_ns();
  const int64_t base = now - now % (10 * kSec) - 30 * kSec;  // a window 30 s ago
  consume({{base + kSec, {}}, {now + 86400 * kSec, {}}});    // a day ahead: kept, counted
  consume({{base + 2 * kSec, {}}});                          // not late: the watermark is bounded
  EXPECT_EQ(ctx_.count("future"), 1u);
  EXPECT_EQ(ctx_.count("late"), 0u);
  consume({{base + 70 * kSec, {}}});  // within max_future: closes the first window
  advance(0);
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"{" + window_fields(base, 10 * kSec) + R"(,"count":2})"}));
  flush();  // the end of the input: the future event's window too
  const int64_t day = now + 86400 * kSec;
  EXPECT_EQ(rows().back(),
            "{" + window_fields(day - day % (10 * kSec), 10 * kSec) + R"(,"count":1})");
}

TEST_F(WindowTest, EventTimeIdleTimeoutEmitsTheWindowsOfAQuietStream) {
  make("window: {size: 10s, time: event, allowed_lateness: 2s, idle_timeout: 30s}");
  const int64_t wall = ctx_.clock().now_ns();                 // when the batch below arrives
  consume({{kBase + 1 * kSec, {}}, {kBase + 4 * kSec, {}}});  // watermark base+2s
  advance(wall + 30 * kSec - 1);                              // not idle long enough yet
  EXPECT_TRUE(out_.batches.empty());
  advance(wall + 30 * kSec);  // idle: watermark base+2s + 30s, past the window's end
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"{" + window_fields(kBase, 10 * kSec) + R"(,"count":2})"}));
  // The stream resumes: an event for the emitted window is late, a new one opens a window.
  consume({{kBase + 9 * kSec, {}}, {kBase + 40 * kSec, {}}});
  EXPECT_EQ(ctx_.count("late"), 1u);
  flush();
  EXPECT_EQ(rows().back(), "{" + window_fields(kBase + 40 * kSec, 10 * kSec) + R"(,"count":1})");
}

TEST_F(WindowTest, EventTimeWithoutIdleTimeoutWaitsForTheNextEvent) {
  make("window: {size: 10s, time: event}");
  consume({{kBase + 1 * kSec, {}}});
  advance(ctx_.clock().now_ns() + 3600 * kSec);
  EXPECT_TRUE(out_.batches.empty());
}

TEST_F(WindowTest, EventTimeWithoutLatenessClosesAtTheFirstEventOfTheNextWindow) {
  make("window: {size: 1s, time: event}");
  consume({{kBase + 999 * kMs, {}}});
  advance(0);
  EXPECT_TRUE(out_.batches.empty());
  consume({{kBase + kSec, {}}, {kBase + 999 * kMs, {}}, {kBase, {}}});
  advance(0);
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"{" + window_fields(kBase, kSec) + R"(,"count":1})"}));
  EXPECT_EQ(ctx_.count("late"), 2u);
}

TEST_F(WindowTest, EventTimeOrderWithinABatchDecidesLateness) {
  make("window: {size: 1s, time: event, allowed_lateness: 500ms}");
  // watermark after each: -, base+1.5s-0.5s=base+1s (closes [base,base+1s)), ...
  consume({{kBase + 100 * kMs, {}},
           {kBase + 1500 * kMs, {}},
           {kBase + 900 * kMs, {}},
           {kBase + 1000 * kMs, {}}});
  flush();
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"{" + window_fields(kBase, kSec) + R"(,"count":1})",
                                      "{" + window_fields(kBase + kSec, kSec) + R"(,"count":2})"}));
  EXPECT_EQ(ctx_.count("late"), 1u);
}

TEST_F(WindowTest, WindowsAlignToEpochMultiplesIncludingBeforeTheEpoch) {
  make("window: {size: 7s, time: event}");
  consume({{-1, {}}, {0, {}}, {7 * kSec - 1, {}}});
  flush();
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"{" + window_fields(-7 * kSec, 7 * kSec) + R"(,"count":1})",
                                      "{" + window_fields(0, 7 * kSec) + R"(,"count":2})"}));
  EXPECT_EQ(rfc3339(-7 * kSec), "1969-12-31T23:59:53.000Z");
}

TEST_F(WindowTest, WhereMatchesScalarsAndListsAndNeedsTheField) {
  make(R"(window: {size: 1s, time: event}
where: {sev: success, code: ["200", "201"]})");
  consume({
      {kBase, {{"sev", S("success")}, {"code", I(200)}}},
      {kBase, {{"sev", S("success")}, {"code", S("201")}}},
      {kBase, {{"code", I(201)}, {"sev", S("success")}}},
      {kBase, {{"sev", S("success")}, {"code", I(500)}}},
      {kBase, {{"sev", S("fail")}, {"code", I(200)}}},
      {kBase, {{"sev", S("success")}}},
      {kBase, {{"code", I(200)}}},
      {kBase, {{"sev", S("successful")}, {"code", I(200)}}},
  });
  flush();
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"{" + window_fields(kBase, kSec) + R"(,"count":3})"}));
  EXPECT_EQ(ctx_.count("filtered"), 5u);
}

TEST_F(WindowTest, GroupsBySeveralKeysSortedWithTheirOriginalTypes) {
  make("window: {size: 1s, time: event}\ngroup_by: [device, code, country]");
  consume({
      {kBase, {{"device", S("tv")}, {"code", I(2)}, {"country", S("UK")}}},
      {kBase, {{"device", S("box")}, {"code", I(10)}, {"country", S("US")}}},
      {kBase, {{"device", S("tv")}, {"code", I(2)}, {"country", S("UK")}}},
      {kBase, {{"device", S("tv")}, {"country", S("UK")}}},
      {kBase, {{"device", S("box")}, {"code", I(10)}, {"country", S("DE")}}},
      {kBase, {{"code", D(2.5)}, {"device", S("tv")}, {"country", S("UK")}}},
  });
  flush();
  std::string w = window_fields(kBase, kSec);
  // Sorted by the texts, field by field: box < tv, DE < US, and for tv a missing code < 2 < 2.5.
  EXPECT_EQ(rows(), (std::vector<std::string>{
                        "{" + w + R"(,"device":"box","code":10,"country":"DE","count":1})",
                        "{" + w + R"(,"device":"box","code":10,"country":"US","count":1})",
                        "{" + w + R"(,"device":"tv","code":null,"country":"UK","count":1})",
                        "{" + w + R"(,"device":"tv","code":2,"country":"UK","count":2})",
                        "{" + w + R"(,"device":"tv","code":2.5,"country":"UK","count":1})"}));
  EXPECT_EQ(cell(0, "code").type, Value::Type::kInt);
  EXPECT_EQ(cell(2, "code").type, Value::Type::kNull);
  EXPECT_EQ(cell(4, "code").type, Value::Type::kDouble);
  EXPECT_EQ(cell(0, "device").type, Value::Type::kString);
}

TEST_F(WindowTest, GroupKeysNeverCollide) {
  make("window: {size: 1s, time: event}\ngroup_by: [a, b]");
  using namespace std::string_view_literals;
  const std::vector<std::vector<std::pair<std::string, Value>>> groups = {
      {},                                 // both missing
      {{"a", S("")}},                     // "" is not missing
      {{"a", Value::null()}},             // null is not missing
      {{"a", S("null")}},                 // nor the text "null"
      {{"a", S("x\x1fy")}},               // the old separator inside a value
      {{"a", S("x")}, {"b", S("y")}},     // ... is not two values
      {{"a", S("x\0\x01"sv)}},            // the terminator and the escape inside a value
      {{"a", S("x")}, {"b", S("\x01")}},  // ... are not two values either
      {{"a", I(7)}},                      // a number is not its text
      {{"a", S("7")}},                    //
      {{"a", Value::boolean(true)}},      // nor is a bool
      {{"a", S("true")}},                 //
  };
  std::vector<In> events;
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t n = 0; n <= g; ++n) events.push_back({kBase, groups[g]});  // group g: g + 1
  consume(events);
  flush();
  // One row per group, each with its own values back and its own count.
  std::vector<std::string> want;
  for (size_t g = 0; g < groups.size(); ++g) {
    Batch b;
    Event& e = b.add("", 0);
    for (const char* name : {"a", "b"}) {
      auto it = std::find_if(groups[g].begin(), groups[g].end(),
                             [&](const auto& f) { return f.first == name; });
      b.append_field(e, name, it == groups[g].end() ? Value::null() : it->second);
    }
    b.append_field(e, "count", I(static_cast<int64_t>(g + 1)));
    std::string line = "{" + window_fields(kBase, kSec) + ",";
    json::append_fields(line, b, e);
    want.push_back(line.erase(line.find(",{") + 1, 1));
  }
  std::vector<std::string> got = rows();
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

TEST_F(WindowTest, MaxGroupsDropsTheEventsOfFurtherGroupsCounted) {
  make("window: {size: 1s, time: event}\ngroup_by: [g]\nmax_groups: 2");
  consume({{kBase, {{"g", S("a")}}},
           {kBase, {{"g", S("b")}}},
           {kBase, {{"g", S("c")}}},
           {kBase, {{"g", S("a")}}},
           {kBase, {{"g", S("d")}}},
           {kBase + kSec, {{"g", S("c")}}}});
  flush();
  const std::string w0 = window_fields(kBase, kSec), w1 = window_fields(kBase + kSec, kSec);
  EXPECT_EQ(rows(), (std::vector<std::string>{"{" + w0 + R"(,"g":"a","count":2})",
                                              "{" + w0 + R"(,"g":"b","count":1})",
                                              "{" + w1 + R"(,"g":"c","count":1})"}));
  EXPECT_EQ(ctx_.count("groups_overflow"), 2u);
  EXPECT_EQ(
      std::count_if(ctx_.logs.begin(), ctx_.logs.end(),
                    [](const auto& l) { return l.second.find("max_groups") != std::string::npos; }),
      1);
}

TEST_F(WindowTest, InspectShowsOpenWindowsAndTheLastClosedOneAsSelected) {
  make(R"(window: {size: 10s, time: event}
group_by: [user]
metrics: {n: count, total: sum(v)})");
  consume({{kBase + kSec, {{"user", S("ann")}, {"v", I(1)}}},
           {kBase + 2 * kSec, {{"user", S("bob")}, {"v", I(2)}}},
           {kBase + 12 * kSec, {{"user", S("ann")}, {"v", I(3)}}}});  // closes the first window
  advance(0);
  consume({{kBase + 13 * kSec, {{"user", S("ann")}, {"v", I(4)}}},
           {kBase + 24 * kSec, {{"user", S("eve")}, {"v", I(5)}}}});  // closes the second
  auto look = [&](Aggregator::InspectQuery query) {
    Batch out;
    EXPECT_TRUE(agg_->inspect(ctx_, query, out));
    std::vector<std::string> rows;
    for (const Event& e : out.events()) {
      std::string line;
      json::append_fields(line, out, e);
      rows.push_back(line);
    }
    return rows;
  };
  const std::string w1 = window_fields(kBase + 10 * kSec, 10 * kSec);
  const std::string w2 = window_fields(kBase + 20 * kSec, 10 * kSec);
  const std::string w0 = window_fields(kBase, 10 * kSec);
  // The first window was emitted; the second one's end has passed, but until advance() emits it,
  // it is open.
  EXPECT_EQ(look({}), (std::vector<std::string>{
                          "{" + w0 + R"(,"user":"ann","n":1,"total":1,"state":"closed"})",
                          "{" + w0 + R"(,"user":"bob","n":1,"total":2,"state":"closed"})",
                          "{" + w1 + R"(,"user":"ann","n":2,"total":7,"state":"open"})",
                          "{" + w2 + R"(,"user":"eve","n":1,"total":5,"state":"open"})"}));
  advance(0);  // the last closed window is the only one kept
  EXPECT_EQ(look({}), (std::vector<std::string>{
                          "{" + w1 + R"(,"user":"ann","n":2,"total":7,"state":"closed"})",
                          "{" + w2 + R"(,"user":"eve","n":1,"total":5,"state":"open"})"}));
  EXPECT_EQ(
      look({.where = {{"user", "eve"}}}),
      (std::vector<std::string>{"{" + w2 + R"(,"user":"eve","n":1,"total":5,"state":"open"})"}));
  EXPECT_TRUE(look({.where = {{"nobody", "eve"}}}).empty());
  EXPECT_EQ(look({.from_ns = kBase + 20 * kSec}).size(), 1u);  // windows ending after: w2
  EXPECT_EQ(look({.to_ns = kBase + 20 * kSec}).size(), 1u);    // starting before: w1
  EXPECT_EQ(look({.max_rows = 1}).size(), 1u);
  // Inspecting changes nothing: the output is as without it.
  flush();
  EXPECT_EQ(rows().back(), "{" + w2 + R"(,"user":"eve","n":1,"total":5})");
}

TEST_F(WindowTest, EveryMetricKind) {
  make(R"(window: {size: 1s, time: event}
group_by: [g]
metrics: {n: count, total: sum(v), lo: min(v), hi: max(v), mean: avg(v), users: distinct(u.id)})");
  consume({
      // a: ints only
      {kBase, {{"g", S("a")}, {"v", I(5)}, {"u.id", S("x")}}},
      {kBase, {{"g", S("a")}, {"v", I(-3)}, {"u.id", S("y")}}},
      {kBase, {{"g", S("a")}, {"v", I(10)}, {"u.id", S("x")}}},
      {kBase, {{"g", S("a")}, {"v", S("12")}, {"u.id", I(7)}}},  // a string is not numeric
      {kBase, {{"g", S("a")}, {"u.id", S("7")}}},                // same text as 7
      // b: a double makes sum, min and max doubles
      {kBase, {{"g", S("b")}, {"v", I(1)}}},
      {kBase, {{"g", S("b")}, {"v", D(0.5)}}},
      // c: no numeric value at all
      {kBase, {{"g", S("c")}, {"v", Value::null()}}},
  });
  flush();
  std::string w = window_fields(kBase, kSec);
  EXPECT_EQ(
      rows(),
      (std::vector<std::string>{
          "{" + w + R"(,"g":"a","n":5,"total":12,"lo":-3,"hi":10,"mean":4,"users":3})",
          "{" + w + R"(,"g":"b","n":2,"total":1.5,"lo":0.5,"hi":1,"mean":0.75,"users":0})",
          "{" + w + R"(,"g":"c","n":1,"total":0,"lo":null,"hi":null,"mean":null,"users":0})"}));
  for (const char* key : {"n", "total", "lo", "hi", "users"})
    EXPECT_EQ(cell(0, key).type, Value::Type::kInt) << key;
  EXPECT_EQ(cell(0, "mean").type, Value::Type::kDouble);
  for (const char* key : {"total", "lo", "hi", "mean"})
    EXPECT_EQ(cell(1, key).type, Value::Type::kDouble) << key;
  EXPECT_EQ(cell(2, "total").type, Value::Type::kInt);
  // Per metric that reads v: a's string and missing value (2 events x 4 metrics) and c's null.
  EXPECT_EQ(ctx_.count("non_numeric"), 2u * 4 + 1u * 4);
}

TEST_F(WindowTest, FirstAndLastFollowEventTimeNotArrival) {
  make(R"(window: {size: 1m, time: event, allowed_lateness: 1m}
group_by: [user]
metrics: {n: count, since: first_seen, until: last_seen, entry: first(page), exit: last(page)}
output: {start: ts, end: "", time_format: ms})");
  const int64_t minute = kBase + 30 * kSec;  // 21:03:00
  consume({
      {minute + 20 * kSec, {{"user", S("ann")}, {"page", S("/b")}}},
      {minute + 5 * kSec, {{"user", S("ann")}, {"page", S("/a")}}},  // earlier, arrives later
      {minute + 40 * kSec, {{"user", S("ann")}}},                    // latest, but no page
      {minute + 30 * kSec, {{"user", S("ann")}, {"page", I(7)}}},    // last page, an integer
      {minute + 9 * kSec, {{"user", S("bob")}, {"page", S("/x")}}},
      {minute + 9 * kSec, {{"user", S("bob")}, {"page", S("/y")}}},  // same time: arrival order
      {minute + 12 * kSec, {{"user", S("eve")}}},                    // never a page
  });
  flush();
  const int64_t ms = minute / kMs;
  EXPECT_EQ(rows(), (std::vector<std::string>{
                        fmt::format(R"({{"ts":{},"user":"ann","n":4,"since":{},"until":{},)"
                                    R"("entry":"/a","exit":7}})",
                                    ms, ms + 5000, ms + 40000),
                        fmt::format(R"({{"ts":{},"user":"bob","n":2,"since":{},"until":{},)"
                                    R"("entry":"/x","exit":"/y"}})",
                                    ms, ms + 9000, ms + 9000),
                        fmt::format(R"({{"ts":{},"user":"eve","n":1,"since":{},"until":{},)"
                                    R"("entry":null,"exit":null}})",
                                    ms, ms + 12000, ms + 12000)}));
  EXPECT_EQ(cell(0, "exit").type, Value::Type::kInt);
}

TEST_F(WindowTest, FirstSeenIsWrittenAsTheWindowTimesAre) {
  make(R"(window: {size: 10s, time: event}
metrics: {since: first_seen, who: first(u)})");
  consume({{kBase + 3 * kSec + 250 * kMs, {{"u", S("a")}}}, {kBase + 7 * kSec, {{"u", S("b")}}}});
  flush();
  EXPECT_EQ(rows(), (std::vector<std::string>{
                        "{" + window_fields(kBase, 10 * kSec) +
                        fmt::format(R"(,"since":"{}","who":"a"}})", rfc3339(kBase + 3250 * kMs))}));
}

TEST_F(WindowTest, IntegerSumOverflowFallsBackToDouble) {
  make("window: {size: 1s, time: event}\nmetrics: {s: sum(v), hi: max(v)}");
  consume({{kBase, {{"v", I(INT64_MAX)}}}, {kBase, {{"v", I(INT64_MAX)}}}});
  flush();
  expect_double(cell(0, "s"), 2.0 * static_cast<double>(INT64_MAX));
  EXPECT_EQ(cell(0, "hi").type, Value::Type::kInt);
  EXPECT_EQ(cell(0, "hi").i, INT64_MAX);
}

TEST_F(WindowTest, DistinctCountsTextsExactly) {
  make("window: {size: 1s, time: event}\nmetrics: {uniq: distinct(uid)}");
  std::vector<In> events;
  std::set<std::string> expected;
  std::deque<std::string> texts;
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    int id = static_cast<int>(rng() % 1500);
    expected.insert(std::to_string(id));
    // Odd ids arrive as strings, even ones as integers; both count by their text.
    if (id % 2) {
      texts.push_back(std::to_string(id));
      events.push_back({kBase, {{"uid", S(texts.back())}}});
    } else {
      events.push_back({kBase, {{"uid", I(id)}}});
    }
    if (events.size() == 100) {
      consume(events);
      events.clear();
    }
  }
  flush();
  ASSERT_EQ(rows().size(), 1u);
  EXPECT_EQ(cell(0, "uniq").i, static_cast<int64_t>(expected.size()));
}

// approx_distinct and distinct past max_distinct: HyperLogLog at the default precision 14.
const double kThreeHllErrors = 3 * 1.04 / std::sqrt(16384.0);

TEST_F(WindowTest, ApproxDistinctIsWithinThreeStandardErrorsOfTheExactCount) {
  make(
      "window: {size: 1s, time: event}\nmetrics: {exact: distinct(uid), approx: "
      "approx_distinct(uid)}");
  std::set<int64_t> ids;
  std::vector<In> events;
  std::deque<std::string> texts;
  std::mt19937_64 rng(11);
  for (int i = 0; i < 50'000; ++i) {
    const int64_t id = static_cast<int64_t>(rng() % 50'000'000);
    ids.insert(id);
    // Each id as an integer and again as a string: both count by their text, once.
    texts.push_back(std::to_string(id));
    events.push_back({kBase, {{"uid", I(id)}}});
    events.push_back({kBase, {{"uid", S(texts.back())}}});
    if (i % 1000 == 0) events.push_back({kBase, {{"other", I(1)}}});  // no uid: not counted
    if (events.size() >= 2000) {
      consume(events);
      events.clear();
      texts.clear();
    }
  }
  consume(events);
  flush();
  ASSERT_EQ(rows().size(), 1u);
  const double expected = static_cast<double>(ids.size());
  ASSERT_GT(expected, 49'000);
  EXPECT_EQ(cell(0, "exact").i, static_cast<int64_t>(ids.size()));  // under max_distinct
  ASSERT_EQ(cell(0, "approx").type, Value::Type::kInt);
  const double error = (static_cast<double>(cell(0, "approx").i) - expected) / expected;
  std::printf("[ measured ] approx_distinct n=%.0f estimate=%lld error=%+.3f%% (3 SE %.2f%%)\n",
              expected, static_cast<long long>(cell(0, "approx").i), 100 * error,
              100 * kThreeHllErrors);
  EXPECT_LE(std::abs(error), kThreeHllErrors);
  EXPECT_EQ(ctx_.count("distinct_overflow"), 0u);
}

TEST_F(WindowTest, DistinctPastMaxDistinctSwitchesToAnEstimateOncePerAccumulator) {
  make(R"(window: {size: 10s, time: event}
group_by: [g]
metrics: {users: distinct(uid), n: count}
max_distinct: 1000)");
  // Group a: exactly max_distinct values, exact; b and c: more, estimated; in two windows, b in
  // both. Values repeat, and arrive over many batches.
  const std::vector<std::pair<std::string, int>> groups = {{"a", 1000}, {"b", 6000}, {"c", 1001}};
  std::deque<std::string> names;
  for (int64_t w = 0; w < 2; ++w) {
    for (int round = 0; round < 2; ++round) {
      for (const auto& [g, distinct] : groups) {
        if (w == 1 && g != "b") continue;
        std::vector<In> events;
        for (int i = 0; i < distinct; ++i) {
          events.push_back({kBase + w * 10 * kSec, {{"g", S(g)}, {"uid", I(i * 7919)}}});
          if (events.size() == 500) {
            consume(events);
            events.clear();
          }
        }
        consume(events);
      }
    }
  }
  flush();
  ASSERT_EQ(rows().size(), 4u);  // a, b, c; then b
  EXPECT_EQ(cell(0, "users").i, 1000);
  EXPECT_EQ(cell(0, "n").i, 2000);
  for (size_t row : {1u, 2u, 3u}) {
    const double expected = row == 2 ? 1001 : 6000;
    const double error = (static_cast<double>(cell(row, "users").i) - expected) / expected;
    std::printf("[ measured ] distinct past max_distinct: n=%.0f estimate=%lld error=%+.3f%%\n",
                expected, static_cast<long long>(cell(row, "users").i), 100 * error);
    EXPECT_LE(std::abs(error), kThreeHllErrors) << "row " << row;
  }
  EXPECT_EQ(ctx_.count("distinct_overflow"), 3u);  // b twice (one per window), c once
  EXPECT_EQ(std::count_if(
                ctx_.logs.begin(), ctx_.logs.end(),
                [](const auto& l) { return l.second.find("max_distinct") != std::string::npos; }),
            1);
}

// The value of rank floor(q * (n - 1)) of the sorted values: what DDSketch estimates.
double exact_quantile(const std::vector<double>& sorted, double q) {
  return sorted[static_cast<size_t>(std::floor(q * static_cast<double>(sorted.size() - 1)))];
}

TEST_F(WindowTest, PercentilesAreWithinTheirAccuracyOfTheExactRanks) {
  make(R"yaml(window: {size: 10s, time: event}
group_by: [g]
metrics: {p50: p50(lat), p90: p90(lat), p95: p95(lat), p99: p99(lat), p999: p999(lat),
          p9999: "percentile(lat, 99.99)", p100: "percentile(lat, 100)",
          p_small: "percentile(lat, 0.5)"})yaml");
  const std::vector<std::pair<std::string, double>> quantiles = {
      {"p50", 0.5},    {"p90", 0.9},      {"p95", 0.95}, {"p99", 0.99},
      {"p999", 0.999}, {"p9999", 0.9999}, {"p100", 1.0}, {"p_small", 0.005}};
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> lognormal(0, 2);
  std::vector<double> values;
  std::vector<In> events;
  for (int i = 0; i < 50'000; ++i) {
    const double x = lognormal(rng);
    values.push_back(x);
    events.push_back({kBase, {{"g", S("a")}, {"lat", D(x)}}});
    if (i % 10'000 == 0) {
      // Whole numbers count as numbers; texts and missing values as non_numeric.
      values.push_back(3);
      events.push_back({kBase, {{"g", S("a")}, {"lat", I(3)}}});
      events.push_back({kBase, {{"g", S("a")}, {"lat", S("slow")}}});
      events.push_back({kBase, {{"g", S("b")}}});
    }
    if (events.size() >= 1000) {
      consume(events);
      events.clear();
    }
  }
  consume(events);
  flush();
  std::sort(values.begin(), values.end());
  ASSERT_EQ(rows().size(), 2u);
  double worst = 0;
  for (const auto& [name, q] : quantiles) {
    const Value& v = cell(0, name);
    ASSERT_EQ(v.type, Value::Type::kDouble) << name;
    const double exact = exact_quantile(values, q);
    const double error = std::abs(v.d - exact) / exact;
    worst = std::max(worst, error);
    EXPECT_LE(error, 0.01 + 1e-12) << name << ": " << v.d << " vs " << exact;
  }
  std::printf(
      "[ measured ] percentiles of %zu lognormal(0,2) values: worst relative error %.4f%%\n",
      values.size(), 100 * worst);
  EXPECT_EQ(cell(0, "p100").d, values.back());  // the exact maximum
  for (const auto& [name, q] : quantiles)
    EXPECT_EQ(cell(1, name).type, Value::Type::kNull) << name;  // b: no numeric value
  // Per metric and event: 5 texts and 5 events without lat, 8 metrics each.
  EXPECT_EQ(ctx_.count("non_numeric"), 5u * 2 * 8);
}

TEST_F(WindowTest, InspectShowsTheSketchMetricsOfAnOpenWindow) {
  make(R"yaml(window: {size: 10s, time: event}
group_by: [g]
metrics: {approx: approx_distinct(uid), users: distinct(uid), median: p50(lat),
          top: "percentile(lat, 100)"}
max_distinct: 2)yaml");
  consume({{kBase, {{"g", S("a")}, {"uid", I(1)}, {"lat", D(1)}}},
           {kBase, {{"g", S("a")}, {"uid", S("2")}, {"lat", D(2)}}},
           {kBase, {{"g", S("a")}, {"uid", I(3)}, {"lat", D(4)}}},
           {kBase, {{"g", S("a")}, {"uid", I(2)}}},
           {kBase, {{"g", S("b")}, {"uid", I(1)}}}});
  Batch out;
  ASSERT_TRUE(agg_->inspect(ctx_, {}, out));
  ASSERT_EQ(out.size(), 2u);
  auto field = [&](size_t row, std::string_view name) {
    return *out.find(out.events()[row], name);
  };
  EXPECT_EQ(field(0, "approx").i, 3);
  EXPECT_EQ(field(0, "users").i, 3);  // past max_distinct: the estimate, exact this small
  EXPECT_NEAR(field(0, "median").d, 2, 2 * 0.01);
  EXPECT_EQ(field(0, "top").d, 4);
  EXPECT_EQ(field(1, "users").i, 1);
  EXPECT_EQ(field(1, "median").type, Value::Type::kNull);
  EXPECT_EQ(ctx_.count("distinct_overflow"), 1u);
}

TEST_F(WindowTest, PercentileAccuracyIsTheRelativeErrorAsked) {
  make(R"(window: {size: 10s, time: event}
metrics: {p90: p90(lat)}
percentile_accuracy: 0.001)");
  std::mt19937_64 rng(9);
  std::exponential_distribution<double> exponential(1);
  std::vector<double> values;
  std::vector<In> events;
  for (int i = 0; i < 20'000; ++i) {
    values.push_back(exponential(rng));
    events.push_back({kBase, {{"lat", D(values.back())}}});
  }
  consume(events);
  flush();
  std::sort(values.begin(), values.end());
  const double exact = exact_quantile(values, 0.9);
  EXPECT_LE(std::abs(cell(0, "p90").d - exact) / exact, 0.001 + 1e-12);
}

TEST_F(WindowTest, OutputBatchesRespectMaxEventsAndKeepOrder) {
  ctx_.limits.max_events = 2;
  make("window: {size: 1s, time: event}\ngroup_by: [k]");
  consume({{kBase, {{"k", S("e")}}},
           {kBase, {{"k", S("c")}}},
           {kBase, {{"k", S("a")}}},
           {kBase, {{"k", S("b")}}},
           {kBase + kSec, {{"k", S("d")}}}});
  flush();
  ASSERT_EQ(out_.batches.size(), 3u);
  EXPECT_EQ(out_.batches[0]->size(), 2u);
  EXPECT_EQ(out_.batches[1]->size(), 2u);
  EXPECT_EQ(out_.batches[2]->size(), 1u);
  std::vector<std::string> order;
  for (size_t i = 0; i < 5; ++i) order.emplace_back(cell(i, "k").s);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c", "e", "d"}));
  EXPECT_EQ(cell(4, "window_start").s, rfc3339(kBase + kSec));
}

struct AckProbe {
  bool fired = false;
  bool ok = false;
  AckRef make() {
    return AckRef::make([this](bool success) {
      fired = true;
      ok = success;
    });
  }
};

// What a sink does once it has written the output: resolves its acks ok.
void deliver(std::vector<BatchPtr>& batches) {
  for (BatchPtr& b : batches) b->resolve_acks(true);
  batches.clear();
}

TEST_F(WindowTest, FutureAndLateEventsGoWhereThePoliciesSay) {
  make("window: {size: 10s, time: event, max_future: 1m, future: dead_letter, late: dead_letter}");
  const int64_t now = ctx_.clock().now_ns();
  const int64_t base = now - now % (10 * kSec) - 30 * kSec;
  consume({{base + kSec, {}},
           {now + 2 * 60 * kSec, {}},
           {base + 15 * kSec, {}},
           {base + 5 * kSec, {}}});  // late: the watermark is at base + 15 s
  flush();
  EXPECT_EQ(ctx_.count("future"), 1u);
  EXPECT_EQ(ctx_.count("late"), 1u);
  ASSERT_EQ(ctx_.dead_letters.size(), 2u);
  EXPECT_NE(ctx_.dead_letters[0].second.find("max_future"), std::string::npos);
  EXPECT_NE(ctx_.dead_letters[1].second.find("late"), std::string::npos);
  EXPECT_EQ(ctx_.dead_letters[1].first, "{}");  // the record itself
  // Neither is in a window.
  EXPECT_EQ(rows(), (std::vector<std::string>{
                        "{" + window_fields(base, 10 * kSec) + R"(,"count":1})",
                        "{" + window_fields(base + 10 * kSec, 10 * kSec) + R"(,"count":1})"}));

  // A record the dead-letter file cannot take is lost: its batch's acks fail.
  make("window: {size: 10s, time: event, max_future: 1m, future: drop, late: dead_letter}");
  ctx_.dead_letter_ok = false;
  AckProbe dropped, lost;
  consume({{now + 2 * 60 * kSec, {}}}, dropped.make());  // dropped by policy: not lost
  consume({{base + 20 * kSec, {}}, {base + kSec, {}}}, lost.make());
  flush();
  deliver(out_.batches);
  EXPECT_TRUE(dropped.fired && dropped.ok);
  EXPECT_TRUE(lost.fired && !lost.ok);
}

TEST_F(WindowTest, AcksFireOnlyOnceTheOutputHoldingTheirLatestWindowIsDelivered) {
  make("window: {size: 10s, time: event, allowed_lateness: 5s}\nwhere: {keep: \"yes\"}");
  AckProbe spans, filtered, early;
  consume({{kBase + 1 * kSec, {{"keep", S("yes")}}}, {kBase + 11 * kSec, {{"keep", S("yes")}}}},
          spans.make());
  consume({{kBase + 2 * kSec, {{"keep", S("no")}}}}, filtered.make());
  EXPECT_TRUE(filtered.fired);  // nothing of it reached a window: dropped by policy
  EXPECT_TRUE(filtered.ok);
  consume({{kBase + 3 * kSec, {{"keep", S("yes")}}}}, early.make());
  EXPECT_FALSE(early.fired);

  consume({{kBase + 19 * kSec, {{"keep", S("yes")}}}});  // closes [base, base+10s) only
  advance(0);
  ASSERT_EQ(out_.batches.size(), 1u);
  EXPECT_FALSE(early.fired);
  deliver(out_.batches);
  EXPECT_TRUE(early.fired);
  EXPECT_TRUE(early.ok);
  EXPECT_FALSE(spans.fired);  // its latest window, [base+10s, base+20s), is still open

  flush();
  EXPECT_FALSE(spans.fired);
  deliver(out_.batches);
  EXPECT_TRUE(spans.fired);
  EXPECT_TRUE(spans.ok);
}

TEST_F(WindowTest, AcksOfAWindowSplitOverBatchesWaitForAllOfThem) {
  ctx_.limits.max_events = 1;
  make("window: {size: 10s, time: event}\ngroup_by: [k]");
  AckProbe probe;
  consume({{kBase, {{"k", I(1)}}}, {kBase, {{"k", I(2)}}}, {kBase, {{"k", I(3)}}}}, probe.make());
  flush();
  ASSERT_EQ(out_.batches.size(), 3u);
  out_.batches.erase(out_.batches.begin() + 2);
  out_.batches.erase(out_.batches.begin());
  EXPECT_FALSE(probe.fired);
  out_.batches[0]->acks.front().fail();
  deliver(out_.batches);
  EXPECT_TRUE(probe.fired);
  EXPECT_FALSE(probe.ok);
}

TEST_F(WindowTest, LateEventsDoNotHoldAcks) {
  make("window: {size: 1s, time: event}");
  consume({{kBase + 5 * kSec, {}}});
  AckProbe probe;
  consume({{kBase, {}}}, probe.make());
  EXPECT_TRUE(probe.fired);
  EXPECT_TRUE(probe.ok);  // dropped by the lateness policy, not lost
  EXPECT_EQ(ctx_.count("late"), 1u);
}

TEST_F(WindowTest, LateRouteSendsLateEventsToTheLateOutputSharingTheAcks) {
  CollectingOutput late;
  ctx_.side_outputs["late"] = &late;
  make("window: {size: 1s, time: event, late: route}");
  consume({{kBase + 5 * kSec, {}}});
  AckProbe probe;
  // One on time, two late (one with a field, which goes along), one more on time.
  consume({{kBase + 5 * kSec + 1, {}},
           {kBase, {{"k", S("a")}}},
           {kBase + 1 * kSec, {}},
           {kBase + 5 * kSec + 2, {}}},
          probe.make());
  EXPECT_EQ(ctx_.count("late"), 2u);
  EXPECT_EQ(ctx_.count("late_routed"), 2u);
  ASSERT_EQ(late.batches.size(), 1u);  // one batch per consume()
  const Batch& routed = *late.batches[0];
  ASSERT_EQ(routed.size(), 2u);
  EXPECT_EQ(routed.events()[0].time_ns, kBase);
  EXPECT_EQ(routed.events()[0].raw, "{}");
  ASSERT_NE(routed.find(routed.events()[0], "k"), nullptr);
  EXPECT_EQ(routed.find(routed.events()[0], "k")->s, "a");  // copied: the input was scribbled on
  EXPECT_EQ(routed.events()[1].time_ns, kBase + 1 * kSec);

  // The source hears back once both the window's output and the late batch are taken.
  flush();
  deliver(out_.batches);
  EXPECT_FALSE(probe.fired);
  deliver(late.batches);
  EXPECT_TRUE(probe.fired);
  EXPECT_TRUE(probe.ok);
}

TEST_F(WindowTest, LateRouteAcksFailWhenTheLateBatchIsLost) {
  CollectingOutput late;
  ctx_.side_outputs["late"] = &late;
  make("window: {size: 1s, time: event, late: route}");
  consume({{kBase + 5 * kSec, {}}});
  AckProbe probe, on_time;
  consume({{kBase, {}}}, probe.make());  // only late: no window holds its acks
  consume({{kBase + 5 * kSec, {}}}, on_time.make());
  EXPECT_EQ(late.batches.size(), 1u);
  EXPECT_FALSE(probe.fired);
  late.batches.clear();  // dropped without a verdict: fails
  EXPECT_TRUE(probe.fired);
  EXPECT_FALSE(probe.ok);
  EXPECT_EQ(late.batches.size(), 0u);  // a batch with no late event sends nothing
  flush();
  deliver(out_.batches);
  EXPECT_TRUE(on_time.fired && on_time.ok);
}

TEST_F(WindowTest, AWindowDroppedUnemittedFailsItsAcks) {
  make("window: {size: 10s, time: event}");
  AckProbe probe;
  consume({{kBase, {}}}, probe.make());
  agg_.reset();  // as after an error: the open window goes without being written
  EXPECT_TRUE(probe.fired);
  EXPECT_FALSE(probe.ok);
}

TEST_F(WindowTest, FlushEmitsEveryOpenWindowOnce) {
  make("window: {size: 1s, time: event, allowed_lateness: 1h}");
  consume({{kBase + 3 * kSec, {}}, {kBase, {}}, {kBase + 1 * kSec, {}}, {kBase, {}}});
  advance(0);
  EXPECT_TRUE(out_.batches.empty());
  flush();
  EXPECT_EQ(rows(), (std::vector<std::string>{
                        "{" + window_fields(kBase, kSec) + R"(,"count":2})",
                        "{" + window_fields(kBase + kSec, kSec) + R"(,"count":1})",
                        "{" + window_fields(kBase + 3 * kSec, kSec) + R"(,"count":1})"}));
  out_.batches.clear();
  flush();
  EXPECT_TRUE(out_.batches.empty());
  EXPECT_EQ(ctx_.count("windows"), 3u);
}

TEST_F(WindowTest, MillisecondWindowsFormatMilliseconds) {
  make("window: {size: 250ms, time: event}");
  consume({{kBase + 1600 * kMs, {}}});
  flush();
  EXPECT_EQ(cell(0, "window_start").s, "2018-01-08T21:02:31.500Z");
  EXPECT_EQ(cell(0, "window_end").s, "2018-01-08T21:02:31.750Z");
}

TEST_F(WindowTest, OutputNamesTheWindowFieldsAndWritesEpochSeconds) {
  make(
      "window: {size: 1m, time: event}\nmetrics: {cnt: distinct(uid)}\n"
      "output: {start: ts, end: '', time_format: s}");
  consume({{kBase + 1600 * kMs, {{"uid", Value::string("a")}}},
           {kBase + 2 * kSec, {{"uid", Value::string("b")}}},
           {kBase + 3 * kSec, {{"uid", Value::string("a")}}}});
  flush();
  // kBase is 21:02:30 UTC: its minute starts 30 s earlier.
  const int64_t minute = (kBase - 30 * kSec) / kSec;
  EXPECT_EQ(rows(), (std::vector<std::string>{fmt::format(R"({{"ts":{},"cnt":2}})", minute)}));
}

TEST_F(WindowTest, OutputInMillisecondsKeepsTheEnd) {
  make("window: {size: 250ms, time: event}\noutput: {time_format: ms}");
  consume({{kBase + 1600 * kMs, {}}});
  flush();
  ASSERT_EQ(cell(0, "window_start").type, Value::Type::kInt);
  EXPECT_EQ(cell(0, "window_start").i, (kBase + 1500 * kMs) / kMs);
  ASSERT_EQ(cell(0, "window_end").type, Value::Type::kInt);
  EXPECT_EQ(cell(0, "window_end").i, (kBase + 1750 * kMs) / kMs);
}

// A reference model of event-time windows: counts, integer sums and distinct values per
// (window, group), with the watermark rule applied event by event.
TEST_F(WindowTest, MatchesAReferenceModelOnRandomInput) {
  make(R"(window: {size: 2s, time: event, allowed_lateness: 3s}
where: {sev: success}
group_by: [device]
metrics: {n: count, total: sum(v), users: distinct(uid)})");
  struct Cell {
    int64_t n = 0, total = 0;
    std::set<int64_t> users;
  };
  std::map<int64_t, std::map<std::string, Cell>> model;
  std::vector<std::string> expected;
  int64_t watermark = INT64_MIN;
  uint64_t late = 0, filtered = 0;
  auto close = [&](int64_t limit) {
    while (!model.empty() && model.begin()->first + 2 * kSec <= limit) {
      for (const auto& [device, c] : model.begin()->second)
        expected.push_back(fmt::format(R"({{{},"device":"{}","n":{},"total":{},"users":{}}})",
                                       window_fields(model.begin()->first, 2 * kSec), device, c.n,
                                       c.total, c.users.size()));
      model.erase(model.begin());
    }
  };

  const std::vector<std::string> devices = {"roku", "xbox_one", "ps4", "tv"};
  std::mt19937_64 rng(42);
  int64_t clock = kBase;
  for (int round = 0; round < 200; ++round) {
    std::vector<In> batch;
    size_t n = rng() % 20;
    for (size_t i = 0; i < n; ++i) {
      clock += static_cast<int64_t>(rng() % 400) * kMs;
      int64_t t = clock - static_cast<int64_t>(rng() % 6000) * kMs;  // up to 6 s out of order
      const std::string& device = devices[rng() % devices.size()];
      bool success = rng() % 4 != 0;
      int64_t v = static_cast<int64_t>(rng() % 100) - 20;
      int64_t uid = static_cast<int64_t>(rng() % 10);
      batch.push_back({t,
                       {{"device", S(device)},
                        {"sev", S(success ? "success" : "fail")},
                        {"v", I(v)},
                        {"uid", I(uid)}}});
      if (!success) {
        ++filtered;
        continue;
      }
      int64_t start = t / (2 * kSec) * (2 * kSec);
      if (start + 2 * kSec <= watermark) {
        ++late;
        continue;
      }
      watermark = std::max(watermark, t - 3 * kSec);
      Cell& c = model[start][device];
      ++c.n;
      c.total += v;
      c.users.insert(uid);
    }
    consume(batch);
    if (rng() % 3 == 0) {
      advance(0);
      close(watermark);
    }
  }
  flush();
  close(INT64_MAX);
  EXPECT_GT(late, 0u);
  EXPECT_EQ(ctx_.count("late"), late);
  EXPECT_EQ(ctx_.count("filtered"), filtered);
  EXPECT_EQ(rows(), expected);
}

// Hopping windows: 2 s every 500 ms, out-of-order input, against a model that puts each event in
// each of its four windows that the watermark has not closed.
TEST_F(WindowTest, HoppingWindowsMatchAReferenceModel) {
  make(R"(window: {size: 2s, hop: 500ms, time: event, allowed_lateness: 1s}
group_by: [device]
metrics: {n: count, total: sum(v)})");
  constexpr int64_t kSize = 2 * kSec, kHop = 500 * kMs;
  std::map<int64_t, std::map<std::string, std::pair<int64_t, int64_t>>> model;
  std::vector<std::string> expected;
  int64_t watermark = INT64_MIN;
  uint64_t late = 0;
  auto close = [&](int64_t limit) {
    while (!model.empty() && model.begin()->first + kSize <= limit) {
      for (const auto& [device, c] : model.begin()->second)
        expected.push_back(fmt::format(R"({{{},"device":"{}","n":{},"total":{}}})",
                                       window_fields(model.begin()->first, kSize), device, c.first,
                                       c.second));
      model.erase(model.begin());
    }
  };
  const std::vector<std::string> devices = {"roku", "tv"};
  std::mt19937_64 rng(7);
  int64_t clock = kBase;
  for (int round = 0; round < 300; ++round) {
    std::vector<In> batch;
    for (size_t i = 0, n = rng() % 10; i < n; ++i) {
      clock += static_cast<int64_t>(rng() % 300) * kMs;
      const int64_t t = clock - static_cast<int64_t>(rng() % 4000) * kMs;  // up to 4 s late
      const std::string& device = devices[rng() % devices.size()];
      const int64_t v = static_cast<int64_t>(rng() % 50);
      batch.push_back({t, {{"device", S(device)}, {"v", I(v)}}});
      const int64_t newest = t / kHop * kHop;
      if (newest + kSize <= watermark) {
        ++late;
        continue;
      }
      for (int64_t start = newest; start > t - kSize; start -= kHop) {
        if (start + kSize <= watermark) break;
        auto& c = model[start][device];
        ++c.first;
        c.second += v;
      }
      watermark = std::max(watermark, t - kSec);
    }
    consume(batch);
    if (rng() % 3 == 0) {
      advance(0);
      close(watermark);
    }
  }
  flush();
  close(INT64_MAX);
  EXPECT_GT(late, 0u);
  EXPECT_EQ(ctx_.count("late"), late);
  EXPECT_EQ(rows(), expected);
}

TEST(WindowOptionsTest, HopMustDivideTheSize) {
  for (const char* yaml : {"window: {size: 1m, hop: 7s}", "window: {size: 1m, hop: 2m}",
                           "window: {size: 1h, hop: 1ms}"}) {
    std::vector<config::Error> errors;
    auto options = config::options_from_yaml(kDescriptor, yaml, errors);
    ASSERT_TRUE(options) << yaml;
    CollectingDiagnostics diag;
    WindowAggregator agg(*options, diag);
    ASSERT_EQ(diag.errors.size(), 1u) << yaml;
    EXPECT_EQ(diag.errors.front().first, "window.hop") << yaml;
  }
}

TEST_F(WindowTest, EventTimeTakesTheLowestWatermarkOfThePartitions) {
  make("window: {size: 10s, time: event, allowed_lateness: 1s}");
  auto partition = [](int32_t p) { return Origin{"in", "t", p, 0, 1, std::nullopt}; };
  consume({{kBase, {}}}, {}, partition(0));
  consume({{kBase, {}}}, {}, partition(1));
  // Then partition 0 is read a minute ahead of partition 1 (librdkafka delivers partitions in
  // runs, a consumer catches up on one of them, ...).
  consume({{kBase + 60 * kSec, {}}, {kBase + 61 * kSec, {}}}, {}, partition(0));
  consume({{kBase + 1 * kSec, {}}, {kBase + 2 * kSec, {}}}, {}, partition(1));
  EXPECT_EQ(ctx_.count("late"), 0u);  // one watermark for both would have made them late
  consume({{kBase + 15 * kSec, {}}}, {}, partition(1));
  advance(0);
  // Partition 1 at 15 s: [base, base+10s) closed with its four events; nothing later.
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"{" + window_fields(kBase, 10 * kSec) + R"(,"count":4})"}));
  // A partition silent for 5 s no longer holds the watermark: the next batch of partition 0
  // moves it on alone.
  ctx_.fake_clock().advance(6 * kSec);
  consume({{kBase + 62 * kSec, {}}}, {}, partition(0));
  consume({{kBase + 3 * kSec, {}}}, {}, partition(1));
  EXPECT_EQ(ctx_.count("late"), 1u);
}

// A source read in time order, one event a second from kBase, cut into batches of 7 events
// (so that batches and windows do not line up) that two parser workers take in turns.
struct WorkerBatch {
  uint32_t worker;
  std::vector<In> events;
};
std::vector<WorkerBatch> parsed_by_two_workers(int64_t seconds) {
  std::vector<WorkerBatch> out;
  for (int64_t s = 0; s < seconds; s += 7) {
    WorkerBatch b{static_cast<uint32_t>(out.size() % 2), {}};
    for (int64_t t = s; t < std::min(s + 7, seconds); ++t)
      b.events.push_back({kBase + t * kSec, {}});
    out.push_back(std::move(b));
  }
  return out;
}

// The order the window gets them in when worker 1 runs up to two batches ahead of worker 0
// (each worker's own batches in order).
std::vector<size_t> worker_one_ahead(size_t n) {
  std::vector<size_t> order;
  size_t next0 = 0, next1 = 1;
  while (next0 < n || next1 < n) {
    for (int k = 0; k < 2 && next1 < n; ++k, next1 += 2) order.push_back(next1);
    if (next0 < n) order.push_back(next0), next0 += 2;
  }
  return order;
}

// `o` as worker `worker` of `workers` of parser "json" hands it on.
Origin parsed_by(Origin o, uint32_t worker, uint32_t workers = 2) {
  o.parser = "json";
  o.worker = worker;
  o.workers = workers;
  return o;
}

Origin parser_worker(uint32_t worker, uint32_t workers = 2) {
  return parsed_by(Origin{"in"}, worker, workers);
}

TEST_F(WindowTest, EventTimeTakesEachParserWorkerAsAStream) {
  out_.acknowledge_on_push = true;
  make("window: {size: 10s, time: event}");
  const auto batches = parsed_by_two_workers(100);
  const auto order = worker_one_ahead(batches.size());
  ASSERT_EQ(order.front(), 1u);  // worker 1's first batch comes before worker 0 delivered any
  std::vector<AckProbe> probes(batches.size());
  for (size_t i : order)
    consume(batches[i].events, probes[i].make(), parser_worker(batches[i].worker));
  EXPECT_EQ(ctx_.count("late"), 0u);
  flush();
  // One event a second: ten in each 10 s window, every one of the 100 counted.
  std::vector<std::string> expected;
  for (int64_t w = 0; w < 10; ++w)
    expected.push_back("{" + window_fields(kBase + w * 10 * kSec, 10 * kSec) + R"(,"count":10})");
  EXPECT_EQ(rows(), expected);
  for (const AckProbe& p : probes) EXPECT_TRUE(p.fired && p.ok);
}

TEST_F(WindowTest, WithoutTheWorkerInItsOriginTheSameOrderWouldBeLate) {
  // What the test above guards against: one stream for both workers.
  make("window: {size: 10s, time: event}");
  const auto batches = parsed_by_two_workers(100);
  for (size_t i : worker_one_ahead(batches.size())) consume(batches[i].events);
  EXPECT_GT(ctx_.count("late"), 0u);
}

TEST_F(WindowTest, AnIdleParserWorkerStopsHoldingTheWatermark) {
  make("window: {size: 10s, time: event}");
  consume({{kBase, {}}, {kBase + 1 * kSec, {}}}, {}, parser_worker(0));
  consume({{kBase + 2 * kSec, {}}, {kBase + 3 * kSec, {}}}, {}, parser_worker(1));
  consume({{kBase + 25 * kSec, {}}}, {}, parser_worker(1));
  advance(ctx_.clock().now_ns());
  EXPECT_TRUE(rows().empty());          // worker 0 is at 1 s: it may still deliver anything after
  ctx_.fake_clock().advance(6 * kSec);  // worker 0 quiet for more than 5 s
  consume({{kBase + 26 * kSec, {}}}, {}, parser_worker(1));
  advance(ctx_.clock().now_ns());
  EXPECT_EQ(rows(),
            (std::vector<std::string>{"{" + window_fields(kBase, 10 * kSec) + R"(,"count":4})"}));
}

TEST_F(WindowTest, WhenTheInputPausesTheLaggingWorkerStopsHoldingAtTheNextTick) {
  make("window: {size: 10s, time: event}");
  consume({{kBase, {}}, {kBase + 1 * kSec, {}}}, {}, parser_worker(0));
  consume({{kBase + 12 * kSec, {}}, {kBase + 25 * kSec, {}}}, {}, parser_worker(1));
  advance(ctx_.clock().now_ns());
  EXPECT_TRUE(rows().empty());  // worker 0 is at 1 s: it may still deliver anything after
  // Then nothing arrives: worker 0 went quiet first (by a second), and once only worker 1 is
  // recent a tick lets it set the watermark, without waiting for another batch.
  ctx_.fake_clock().advance(1 * kSec);
  consume({{kBase + 25 * kSec, {}}}, {}, parser_worker(1));
  ctx_.fake_clock().advance(4500 * kMs);  // worker 0 quiet for 5.5 s, worker 1 for 4.5 s
  advance(ctx_.clock().now_ns());
  EXPECT_EQ(rows(), (std::vector<std::string>{
                        "{" + window_fields(kBase, 10 * kSec) + R"(,"count":2})",
                        "{" + window_fields(kBase + 10 * kSec, 10 * kSec) + R"(,"count":1})"}));
}

TEST_F(WindowTest, AParserWorkerThatHasNotDeliveredHoldsTheWatermarkWhereItIs) {
  make("window: {size: 10s, time: event}");
  // Worker 2 of 3 delivers first and far ahead; workers 0 and 1 have not delivered yet.
  consume({{kBase + 40 * kSec, {}}}, {}, parser_worker(2, 3));
  consume({{kBase, {}}}, {}, parser_worker(0, 3));
  consume({{kBase + 1 * kSec, {}}}, {}, parser_worker(1, 3));
  EXPECT_EQ(ctx_.count("late"), 0u);
  flush();
  EXPECT_EQ(rows(), (std::vector<std::string>{
                        "{" + window_fields(kBase, 10 * kSec) + R"(,"count":2})",
                        "{" + window_fields(kBase + 40 * kSec, 10 * kSec) + R"(,"count":1})"}));
}

TEST_F(WindowTest, AParserWorkerWhoseBatchesAreAllFilteredOutDoesNotHoldTheWatermark) {
  make("window: {size: 10s, time: event}\nwhere: {sev: success}");
  const In success{kBase, {{"sev", S("success")}}};
  const In failure{kBase, {{"sev", S("failure")}}};
  consume({success}, {}, parser_worker(0));
  // Worker 1 delivers, but nothing it delivers passes `where`: it has no time to hold by.
  for (int64_t s = 1; s <= 30; ++s) {
    In f = failure;
    f.time_ns = kBase + s * kSec;
    consume({f}, {}, parser_worker(1));
    In ok = success;
    ok.time_ns = kBase + s * kSec;
    consume({ok}, {}, parser_worker(0));
    ctx_.fake_clock().advance(kSec / 2);  // both deliver all the time: neither is idle
  }
  advance(ctx_.clock().now_ns());
  // Worker 0 at 30 s closed [0, 10), [10, 20) and [20, 30), ten successes each.
  std::vector<std::string> expected;
  for (int64_t w = 0; w < 3; ++w)
    expected.push_back("{" + window_fields(kBase + w * 10 * kSec, 10 * kSec) + R"(,"count":10})");
  EXPECT_EQ(rows(), expected);
}

// The acks of n batches, each counting how often it fired and how often with ok.
struct AckTally {
  explicit AckTally(size_t n) : fired(n, 0), ok(n, 0) {}
  AckRef make(size_t i, AckRef::Replay replay = AckRef::Replay::kNo) {
    return AckRef::make(
        [this, i](bool success) {
          ++fired[i];
          ok[i] += success;
        },
        replay);
  }
  // Every one fired `times` times, each with `ok_times` oks.
  void expect(int times, int ok_times) const {
    for (size_t i = 0; i < fired.size(); ++i) {
      ASSERT_EQ(fired[i], times) << "ack " << i;
      ASSERT_EQ(ok[i], ok_times) << "ack " << i;
    }
  }
  std::vector<int> fired, ok;
};

TEST_F(WindowTest, AWindowHoldsABoundedNumberOfAcksHoweverManyBatchesReachIt) {
  make("window: {size: 1h, time: event}");
  constexpr size_t kBatches = 5000;
  AckTally acks(kBatches);
  // Replayable and not, so that both kinds of fold are made.
  for (size_t i = 0; i < kBatches; ++i)
    consume({{kBase + static_cast<int64_t>(i) * kMs, {}}},
            acks.make(i, i < kBatches / 2 ? AckRef::Replay::kYes : AckRef::Replay::kNo));
  acks.expect(0, 0);
  flush();
  ASSERT_EQ(out_.batches.size(), 1u);
  EXPECT_EQ(cell(0, "count").i, static_cast<int64_t>(kBatches));
  // The output carries what the window held: at most 256 refs (the documented bound), not one
  // per batch; none has fired before the output is written.
  EXPECT_LE(out_.batches[0]->acks.size(), 256u);
  acks.expect(0, 0);
  out_.batches[0]->resolve_acks(true);  // the sink wrote it
  acks.expect(1, 1);
}

TEST_F(WindowTest, TheFoldedAcksOfADroppedWindowFailOnce) {
  make("window: {size: 1h, time: event}");
  constexpr size_t kBatches = 1000;
  AckTally acks(kBatches);
  for (size_t i = 0; i < kBatches; ++i)
    consume({{kBase + static_cast<int64_t>(i) * kMs, {}}}, acks.make(i));
  agg_.reset();  // destroyed with its window open (as after an error)
  acks.expect(1, 0);
}

TEST_F(WindowTest, AWindowOfReplayableInputStaysReplayableWhenItsAcksAreFolded) {
  make("window: {size: 1h, time: event}");
  constexpr size_t kBatches = 1000;
  AckTally acks(kBatches);
  for (size_t i = 0; i < kBatches; ++i)
    consume({{kBase + static_cast<int64_t>(i) * kMs, {}}}, acks.make(i, AckRef::Replay::kYes));
  ctx_.request_stop();
  flush();  // all of it replayable: left for the next run, not emitted cut short
  EXPECT_TRUE(out_.batches.empty());
  EXPECT_EQ(ctx_.count("left_for_replay"), kBatches);
  acks.expect(1, 0);
}

// Stop and checkpoint. Events of a unique-users-per-minute job: one per (second, user).
std::vector<In> users(int64_t from_s, int64_t to_s, int64_t first_uid = 0) {
  std::vector<In> out;
  for (int64_t s = from_s; s < to_s; ++s)
    out.push_back({kBase + s * kSec, {{"uid", I(first_uid + s % 7)}, {"device", S("tv")}}});
  return out;
}

AckRef replayable_ack(AckProbe& probe) {
  return AckRef::make(
      [&probe](bool ok) {
        probe.fired = true;
        probe.ok = ok;
      },
      AckRef::Replay::kYes);
}

Origin kafka_origin(int64_t first, int64_t end) {
  return {"in", "events", 0, first, end, std::nullopt};
}

// Hands `events` to an aggregator in one batch (string values point at static texts).
void feed(WindowAggregator& agg, Context& ctx, const std::vector<In>& events, Origin origin = {},
          AckRef ack = {}) {
  Batch batch;
  batch.origin = std::move(origin);
  for (const In& in : events) {
    Event& e = batch.add("{}", in.time_ns);
    for (const auto& [key, value] : in.fields) batch.append_field(e, key, value);
  }
  if (ack.holds()) batch.acks.push_back(std::move(ack));
  agg.consume(ctx, batch);
}

std::vector<std::string> rows_of(const CollectingOutput& out) {
  std::vector<std::string> rows;
  for (const BatchPtr& b : out.batches)
    for (const Event& e : b->events()) {
      std::string line;
      json::append_fields(line, *b, e);
      rows.push_back(line);
    }
  return rows;
}

constexpr char kUsers[] = R"(window: {size: 10s, time: event, allowed_lateness: 2s}
group_by: [device]
metrics: {n: count, users: distinct(uid), first: first_seen, last_uid: last(uid)})";
const std::string kUsersPerWindow = std::string(kUsers) + "\ncheckpoint: true";

// The checkpoint tests: a state directory of their own, and the runs after the first.
class WindowCheckpointTest : public WindowTest {
 protected:
  void SetUp() override {
    ctx_.state_root =
        (std::filesystem::temp_directory_path() / fmt::format("ingestd_window_test_{}", ::getpid()))
            .string();
    std::filesystem::remove_all(ctx_.state_root);
  }
  void TearDown() override { std::filesystem::remove_all(ctx_.state_root); }

  // A new instance over the same state, as the next run of the daemon makes it, started in `ctx`.
  std::unique_ptr<WindowAggregator> next_run(FakeContext& ctx,
                                             const std::string& yaml = kUsersPerWindow) {
    ctx.state_root = ctx_.state_root;
    std::vector<config::Error> errors;
    auto options = config::options_from_yaml(kDescriptor, yaml, errors);
    EXPECT_TRUE(options) << (errors.empty() ? "" : errors.front().to_string());
    auto agg = std::make_unique<WindowAggregator>(*options, diag_);
    EXPECT_TRUE(agg->start(ctx));
    return agg;
  }

  // The checkpoint file the first run left.
  std::string checkpoint_file() {
    for (const auto& entry : std::filesystem::directory_iterator(ctx_.state_dir()))
      if (entry.path().extension() == ".ckpt") return entry.path().string();
    ADD_FAILURE() << "no checkpoint in " << ctx_.state_dir();
    return {};
  }

  static bool logged(const FakeContext& ctx, LogLevel level, std::string_view text) {
    return std::any_of(ctx.logs.begin(), ctx.logs.end(), [&](const auto& l) {
      return l.first == level && l.second.find(text) != std::string::npos;
    });
  }

  // The next run of `yaml`, started in `next`: it takes input[from], input[from + 1], ... (each
  // followed by an advance) and ends, writing its rows to out_.
  void run_rest(FakeContext& next, const std::string& yaml,
                const std::vector<std::vector<In>>& input, size_t from) {
    auto again = next_run(next, yaml);
    for (size_t i = from; i < input.size(); ++i) {
      feed(*again, next, input[i]);
      again->advance(next, out_, 0);
    }
    again->flush(next, out_);
  }

  // The checkpoint a run of `yaml` saves when stopped after `events`, read back from `file`.
  std::string saved_at_stop(const std::string& yaml, const std::vector<In>& events,
                            std::string& file) {
    make(yaml);
    consume(events);
    ctx_.request_stop();
    flush();
    file = checkpoint_file();
    std::string saved, error;
    EXPECT_EQ(read_file(file, saved, error), ReadStatus::kOk) << error;
    return saved;
  }

  // Writes `bytes` as the checkpoint `file` and starts the next run of `yaml` over it: true when
  // that run started, set the file aside and reported it damaged.
  bool damaged_start(const std::string& file, const std::string& bytes,
                     const std::string& yaml = kUsersPerWindow) {
    std::filesystem::remove(file + ".damaged");
    std::string error;
    EXPECT_TRUE(replace_file(file, bytes, error)) << error;
    FakeContext ctx;
    next_run(ctx, yaml);  // starts: never a crash loop
    EXPECT_TRUE(std::filesystem::exists(file + ".damaged"));
    return logged(ctx, LogLevel::kError, "damaged checkpoint");
  }
};

TEST_F(WindowTest, StopLeavesWindowsOfReplayableInputToTheNextRun) {
  make("window: {size: 10s, time: event}");
  AckProbe replayable, once;
  consume(users(0, 5), replayable_ack(replayable));
  consume(users(12, 13), once.make());  // [base+10s, base+20s): input nobody reads again
  ctx_.request_stop();
  flush();
  EXPECT_TRUE(replayable.fired);
  EXPECT_FALSE(replayable.ok);  // not committed: the source reads it again
  EXPECT_EQ(ctx_.count("left_for_replay"), 5u);
  EXPECT_EQ(rows(), (std::vector<std::string>{"{" + window_fields(kBase + 10 * kSec, 10 * kSec) +
                                              R"(,"count":1})"}));
  deliver(out_.batches);
  EXPECT_TRUE(once.ok);
}

TEST_F(WindowTest, TheEndOfTheInputEmitsWindowsOfReplayableInputToo) {
  make("window: {size: 10s, time: event}");
  AckProbe probe;
  consume(users(0, 5), replayable_ack(probe));
  flush();  // not stopping: a batch job's input ended
  EXPECT_EQ(out_.event_count(), 1u);
  EXPECT_EQ(ctx_.count("left_for_replay"), 0u);
  deliver(out_.batches);
  EXPECT_TRUE(probe.ok);
}

TEST_F(WindowTest, TheWatermarkAtAStopMakesInputReadAgainLateForEmittedWindows) {
  make("window: {size: 10s, time: event}");
  consume(users(0, 12));  // [base, base+10s) closes at second 10
  advance(0);
  ASSERT_EQ(out_.event_count(), 1u);
  ctx_.request_stop();
  flush();

  FakeContext next;
  next.state_root = ctx_.state_root;
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(kDescriptor, "window: {size: 10s, time: event}", errors);
  WindowAggregator again(*options, diag_);
  ASSERT_TRUE(again.start(next));
  feed(again, next, users(8, 14));  // read again from an older offset
  EXPECT_EQ(next.count("late"), 2u);
  CollectingOutput out;
  again.flush(next, out);
  EXPECT_EQ(rows_of(out),
            (std::vector<std::string>{"{" + window_fields(kBase + 10 * kSec, 10 * kSec) +
                                      R"(,"count":4})"}));
}

// The rows of one uninterrupted run over `batches`, flushed at the end.
std::vector<std::string> uninterrupted(const std::vector<std::vector<In>>& batches,
                                       std::string_view yaml = kUsers) {
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(kDescriptor, yaml, errors);
  CollectingDiagnostics diag;
  FakeContext ctx;
  CollectingOutput out;
  WindowAggregator agg(*options, diag);
  EXPECT_TRUE(agg.start(ctx));
  for (const auto& events : batches) {
    feed(agg, ctx, events);
    agg.advance(ctx, out, 0);
  }
  agg.flush(ctx, out);
  return rows_of(out);
}

TEST_F(WindowCheckpointTest, ACheckpointCarriesOpenWindowsThroughAStop) {
  // Up to second 10 before the stop: the watermark (8 s) closes nothing.
  const std::vector<std::vector<In>> input = {users(0, 4), users(4, 11, 3), users(11, 25, 5),
                                              users(25, 31, 1)};
  const std::vector<std::string> expected = uninterrupted(input);
  ASSERT_EQ(expected.size(), 4u);

  out_.acknowledge_on_push = true;
  make(kUsersPerWindow);
  AckProbe a, b;
  consume(input[0], replayable_ack(a));
  consume(input[1], replayable_ack(b));
  advance(0);
  EXPECT_TRUE(out_.batches.empty());
  EXPECT_FALSE(a.fired);
  ctx_.request_stop();
  flush();  // saved, not emitted, and so acknowledged
  EXPECT_TRUE(out_.batches.empty());
  EXPECT_TRUE(a.fired && a.ok);
  EXPECT_TRUE(b.fired && b.ok);
  EXPECT_EQ(ctx_.count("checkpoints"), 1u);
  EXPECT_EQ(ctx_.count("left_for_replay"), 0u);

  FakeContext next;
  run_rest(next, kUsersPerWindow, input, 2);
  EXPECT_TRUE(logged(next, LogLevel::kInfo, "restored 2 open windows"));
  EXPECT_EQ(rows(), expected);
}

TEST_F(WindowCheckpointTest, ACheckpointSkipsReplayedInputItAlreadyCovers) {
  out_.acknowledge_on_push = true;
  make(kUsersPerWindow);
  consume(users(0, 6), {}, kafka_origin(100, 106));
  ctx_.request_stop();
  flush();

  // The source committed less than the checkpoint covers (its commits are asynchronous), so the
  // next run reads offsets 100.. again, in other batches.
  FakeContext next;
  auto again = next_run(next);
  feed(*again, next, users(0, 3), kafka_origin(100, 103));  // covered whole
  feed(*again, next, users(3, 8), kafka_origin(103, 108));  // 103..105 covered, 106.. new
  feed(*again, next, users(8, 9), kafka_origin(108, 109));
  again->flush(next, out_);
  EXPECT_EQ(next.count("replay_skipped"), 6u);
  // first_seen is the first run's first event: restored, not the first one after the restart.
  EXPECT_EQ(rows(), (std::vector<std::string>{
                        "{" + window_fields(kBase, 10 * kSec) +
                        fmt::format(R"(,"device":"tv","n":9,"users":7,"first":"{}","last_uid":1}})",
                                    rfc3339(kBase))}));
}

TEST_F(WindowCheckpointTest, BatchesOfParserWorkersOutOfOrderAreNotTakenForReplays) {
  out_.acknowledge_on_push = true;
  make(kUsersPerWindow);
  // Worker 1 delivers offsets 103.. before worker 0 delivers 100..102, then 106.. .
  consume(users(3, 6), {}, parsed_by(kafka_origin(103, 106), 1));
  consume(users(0, 3), {}, parsed_by(kafka_origin(100, 103), 0));
  consume(users(6, 9), {}, parsed_by(kafka_origin(106, 109), 0));
  EXPECT_EQ(ctx_.count("replay_skipped"), 0u);
  ctx_.request_stop();
  flush();

  // The next run reads 100.. again: all of it was taken in, so all of it is skipped.
  FakeContext next;
  auto again = next_run(next);
  feed(*again, next, users(0, 9), kafka_origin(100, 109));
  feed(*again, next, users(9, 10), kafka_origin(109, 110));
  again->flush(next, out_);
  EXPECT_EQ(next.count("replay_skipped"), 9u);
  EXPECT_EQ(rows(),
            (std::vector<std::string>{
                "{" + window_fields(kBase, 10 * kSec) +
                fmt::format(R"(,"device":"tv","n":10,"users":7,"first":"{}","last_uid":2}})",
                            rfc3339(kBase))}));
}

TEST_F(WindowCheckpointTest, ACheckpointTakenWhileAWorkerHoldsAnEarlierBatchDoesNotSkipIt) {
  out_.acknowledge_on_push = true;
  make(kUsersPerWindow);
  consume(users(0, 3), {}, parsed_by(kafka_origin(100, 103), 0));
  // Worker 1 delivers 106..108 while worker 0 still parses 103..105: the stop comes then.
  consume(users(6, 9), {}, parsed_by(kafka_origin(106, 109), 1));
  ctx_.request_stop();
  flush();

  // 103..105 never reached the window: read again, they are counted, not skipped (106.. may be
  // counted twice: at least once, never lost).
  FakeContext next;
  auto again = next_run(next);
  feed(*again, next, users(3, 6), kafka_origin(103, 106));
  again->flush(next, out_);
  EXPECT_EQ(next.count("replay_skipped"), 0u);
  const std::vector<std::string> got = rows();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got.front().find(R"("n":9)"), std::string::npos) << got.front();
}

TEST_F(WindowCheckpointTest, AWindowEmittedUnderCheckpointIsSentAgainUntilItsOutputIsAcknowledged) {
  make(kUsersPerWindow);
  AckProbe probe;
  consume(users(0, 3), replayable_ack(probe));
  consume(users(15, 16));  // the watermark passes the first window's end
  advance(0);
  ASSERT_EQ(out_.event_count(), 1u);
  EXPECT_TRUE(probe.fired && probe.ok);  // saved (as to be sent again): durable, so acknowledged
  const std::vector<std::string> first_rows = rows();
  out_.batches.clear();  // lost with a crash before the sink wrote it
  agg_.reset();

  FakeContext next;
  auto again = next_run(next);
  CollectingOutput out;
  again->advance(next, out, 0);
  EXPECT_EQ(rows_of(out), first_rows);
  deliver(out.batches);
  again->advance(next, out, 0);  // settled: saved without it
  again.reset();

  FakeContext third;
  auto last = next_run(third);
  last->advance(third, out, 0);
  EXPECT_TRUE(out.batches.empty());  // delivered once: not sent again
}

TEST_F(WindowCheckpointTest, ADamagedCheckpointIsReportedSetAsideAndIgnored) {
  std::string file;
  const std::string good = saved_at_stop(kUsersPerWindow, users(0, 6), file);

  for (size_t n = 0; n < good.size(); n += std::max<size_t>(1, good.size() / 40))
    EXPECT_TRUE(damaged_start(file, good.substr(0, n))) << "truncated to " << n;
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x40;
  EXPECT_TRUE(damaged_start(file, flipped));
}

// A checkpoint as the first format wrote it: group keys were the texts joined by 0x1f, without
// their types, so a missing field was a null of no text.
TEST_F(WindowCheckpointTest, AVersion1CheckpointIsRestoredWithItsKeysConverted) {
  const std::string yaml = R"(window: {size: 10s, time: event}
group_by: [device, room]
metrics: {n: count}
checkpoint: true)";
  // This configuration's fingerprint, from a checkpoint of today's format.
  make(yaml);
  consume({{kBase, {{"device", S("tv")}}}});
  ctx_.request_stop();
  flush();
  const std::string file = checkpoint_file();
  std::string current, error;
  ASSERT_EQ(read_file(file, current, error), ReadStatus::kOk) << error;
  uint32_t fp_size;
  std::memcpy(&fp_size, current.data() + 9, 4);
  const std::string fingerprint = current.substr(13, fp_size);

  std::string v1 = "INGWINCK";
  auto put = [&v1](const auto& v) { v1.append(reinterpret_cast<const char*>(&v), sizeof v); };
  auto str = [&](std::string_view t) {
    put(static_cast<uint32_t>(t.size()));
    v1 += t;
  };
  auto part = [&](uint8_t type, uint32_t offset, uint32_t size) {
    put(type);
    put(offset);
    put(size);
  };
  put(uint8_t{1});
  str(fingerprint);
  put(kBase);                                // watermark
  put(std::numeric_limits<int64_t>::min());  // closed_until
  put(uint32_t{0});                          // positions
  put(uint32_t{1});                          // windows
  put(kBase);
  put(uint8_t{0});   // open
  put(uint32_t{2});  // groups
  const auto kNull = static_cast<uint8_t>(Value::Type::kNull);
  const auto kString = static_cast<uint8_t>(Value::Type::kString);
  str("tv\x1f");  // room missing
  put(int64_t{3});
  part(kString, 0, 2);
  part(kNull, 3, 0);
  put(int64_t{0});  // the count metric's accumulator
  put(uint8_t{3});
  for (int i = 0; i < 3; ++i) put(int64_t{0});
  for (int i = 0; i < 3; ++i) put(0.0);
  put(uint32_t{0});
  str("tv\x1fnull");  // room null
  put(int64_t{5});
  part(kString, 0, 2);
  part(kNull, 3, 4);
  put(int64_t{0});
  put(uint8_t{3});
  for (int i = 0; i < 3; ++i) put(int64_t{0});
  for (int i = 0; i < 3; ++i) put(0.0);
  put(uint32_t{0});
  put(static_cast<uint64_t>(XXH3_64bits(v1.data(), v1.size())));
  ASSERT_TRUE(replace_file(file, v1, error)) << error;

  FakeContext next;
  auto again = next_run(next, yaml);
  ASSERT_TRUE(logged(next, LogLevel::kInfo, "restored 1 open window")) << next.logs.size();
  // New events join the restored groups they belong to: missing with missing, null with null.
  feed(*again, next, {{kBase + kSec, {{"device", S("tv")}}}});
  feed(*again, next, {{kBase + kSec, {{"device", S("tv")}, {"room", Value::null()}}}});
  again->flush(next, out_);
  const std::string w = window_fields(kBase, 10 * kSec);
  EXPECT_EQ(rows(), (std::vector<std::string>{"{" + w + R"(,"device":"tv","room":null,"n":4})",
                                              "{" + w + R"(,"device":"tv","room":null,"n":6})"}));
}

TEST_F(WindowCheckpointTest, AnotherConfigurationsCheckpointIsNamedNotRestored) {
  make(kUsersPerWindow);
  consume(users(0, 6));
  ctx_.request_stop();
  flush();

  FakeContext next;
  auto other = next_run(next, kUsersPerWindow + "\nwhere: {device: tv}");
  EXPECT_TRUE(logged(next, LogLevel::kWarn, "another configuration"));
  other->flush(next, out_);
  EXPECT_TRUE(out_.batches.empty());
}

TEST_F(WindowCheckpointTest, AFailedSaveKeepsTheInputUnacknowledged) {
  make(kUsersPerWindow);
  consume(users(0, 2));
  ctx_.request_stop();
  flush();
  // A directory where the file was: the rename over it fails.
  const std::string file = checkpoint_file();
  std::filesystem::remove(file);
  std::filesystem::create_directories(file + "/blocked");

  FakeContext next;
  next.request_stop();
  auto agg = next_run(next);
  AckProbe probe;
  feed(*agg, next, users(0, 1), {}, replayable_ack(probe));
  agg->flush(next, out_);
  EXPECT_EQ(next.count("checkpoint_errors"), 1u);
  EXPECT_TRUE(probe.fired);
  EXPECT_FALSE(probe.ok);  // read again next time
}

// Sketches through a checkpoint: approx_distinct, a distinct that passes max_distinct and p99.
constexpr char kSketches[] = R"(window: {size: 10s, time: event, allowed_lateness: 2s}
group_by: [device]
metrics: {n: count, approx: approx_distinct(uid), users: distinct(uid), slow: p99(lat)}
max_distinct: 5)";
const std::string kSketchesSaved = std::string(kSketches) + "\ncheckpoint: true";

// 20 events a second: 37 users, lognormal latencies (the same for the same seconds).
std::vector<In> requests(int64_t from_s, int64_t to_s) {
  std::vector<In> out;
  for (int64_t s = from_s; s < to_s; ++s) {
    std::mt19937_64 rng(static_cast<uint64_t>(s));
    std::lognormal_distribution<double> lognormal(3, 1);
    for (int64_t i = 0; i < 20; ++i)
      out.push_back(
          {kBase + s * kSec + i * kMs,
           {{"uid", I((s * 20 + i) % 37)}, {"device", S("tv")}, {"lat", D(lognormal(rng))}}});
  }
  return out;
}

TEST_F(WindowCheckpointTest, SketchesCarryThroughAStopAsInAnUninterruptedRun) {
  const std::vector<std::vector<In>> input = {requests(0, 4), requests(4, 11), requests(11, 25),
                                              requests(25, 31)};
  const std::vector<std::string> expected = uninterrupted(input, kSketches);
  ASSERT_EQ(expected.size(), 4u);

  out_.acknowledge_on_push = true;
  make(kSketchesSaved);
  consume(input[0]);
  consume(input[1]);
  advance(0);
  EXPECT_TRUE(out_.batches.empty());
  EXPECT_EQ(ctx_.count("distinct_overflow"), 2u);  // both open windows passed 5 users
  ctx_.request_stop();
  flush();
  std::string saved, read_error;
  ASSERT_EQ(read_file(checkpoint_file(), saved, read_error), ReadStatus::kOk) << read_error;
  EXPECT_EQ(saved[8], 3);               // the format version
  EXPECT_GT(saved.size(), 4u * 16384);  // two windows' two HyperLogLogs

  FakeContext next;
  run_rest(next, kSketchesSaved, input, 2);
  EXPECT_TRUE(logged(next, LogLevel::kInfo, "restored 2 open windows"));
  EXPECT_EQ(rows(), expected);
  // The first window's sketches came through the checkpoint: 37 users, p99 a double.
  ASSERT_FALSE(out_.batches.empty());
  EXPECT_EQ(cell(0, "users").i, 37);
  EXPECT_EQ(cell(0, "approx").i, 37);
  EXPECT_EQ(cell(0, "slow").type, Value::Type::kDouble);
}

TEST_F(WindowCheckpointTest, SketchOptionsAtTheirDefaultsKeepTheFingerprint) {
  make(kUsersPerWindow);
  ctx_.request_stop();
  flush();
  const std::string file = checkpoint_file();
  FakeContext same;
  next_run(same, kUsersPerWindow +
                     "\nhll_precision: 14\nmax_distinct: 100000\n"
                     "percentile_accuracy: 0.01");
  EXPECT_FALSE(logged(same, LogLevel::kWarn, "another configuration"));
  FakeContext other;
  next_run(other, kUsersPerWindow + "\nmax_distinct: 10");
  EXPECT_TRUE(logged(other, LogLevel::kWarn, "another configuration"));
}

TEST_F(WindowCheckpointTest, ADamagedVersion3CheckpointIsReportedSetAsideAndIgnored) {
  std::string file;
  const std::string good = saved_at_stop(kSketchesSaved, requests(0, 6), file);
  ASSERT_GT(good.size(), 8u);
  ASSERT_EQ(good[8], 3);

  // Torn, so the checksum fails; and cut with a checksum that fits, so the reader has to find
  // each count longer than what is left. The sketches are most of the file.
  const std::string body = good.substr(0, good.size() - 8);
  for (size_t n = 0; n < body.size(); n += std::max<size_t>(1, body.size() / 60)) {
    EXPECT_TRUE(damaged_start(file, good.substr(0, n), kSketchesSaved)) << "torn at " << n;
    std::string cut = body.substr(0, n);
    const uint64_t sum = XXH3_64bits(cut.data(), cut.size());
    cut.append(reinterpret_cast<const char*>(&sum), 8);
    EXPECT_TRUE(damaged_start(file, cut, kSketchesSaved)) << "cut at " << n;
  }
  // A register no HyperLogLog of precision 14 can hold (a rank above 65 - 14), with a checksum
  // that fits: the registers follow the sketch kind 1, the precision 14 and the size 2^14.
  const std::string marker = std::string("\x01\x0e", 2) + std::string("\x00\x40\x00\x00", 4);
  const size_t at = body.find(marker);
  ASSERT_NE(at, std::string::npos);
  std::string impossible = body;
  impossible[at + marker.size()] = 60;
  const uint64_t sum = XXH3_64bits(impossible.data(), impossible.size());
  impossible.append(reinterpret_cast<const char*>(&sum), 8);
  EXPECT_TRUE(damaged_start(file, impossible, kSketchesSaved));
}

// The options an aggregator of `yaml` (valid by the schema) reports errors at, in order; the
// errors in `diag`.
std::vector<std::string> options_in_error(std::string_view yaml, CollectingDiagnostics& diag) {
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(kDescriptor, yaml, errors);
  EXPECT_TRUE(options) << (errors.empty() ? "" : errors.front().to_string());
  std::vector<std::string> bad;
  if (!options) return bad;
  WindowAggregator agg(*options, diag);
  for (const auto& [option, message] : diag.errors) bad.push_back(option);
  return bad;
}

TEST(WindowOptionsTest, BadSketchMetricsAndOptionsAreReportedAtTheirOption) {
  CollectingDiagnostics diag;
  const std::vector<std::string> bad = options_in_error(R"yaml(window: {size: 1s}
metrics: {a: "percentile(x, 0)", b: "percentile(x, 101)", c: p42(x), d: percentile(x),
          e: "percentile(x, fast)", f: "percentile(, 50)", ok: "percentile( x , 99.9 )",
          ok2: p999(x), ok3: approx_distinct(x), ok4: "percentile(x, 100)"})yaml",
                                                        diag);
  ASSERT_EQ(bad, (std::vector<std::string>{"metrics.a", "metrics.b", "metrics.c", "metrics.d",
                                           "metrics.e", "metrics.f"}));
  for (const char* listed : {"distinct(f)", "approx_distinct(f)", "p50(f)", "p999(f)",
                             "percentile(f, q)", "first(f)", "last(f)"})
    EXPECT_NE(diag.errors[0].second.find(listed), std::string::npos) << listed;

  // The schema bounds hll_precision (HyperLogLog::valid_precision), percentile_accuracy
  // (DDSketch::valid_alpha) and max_distinct, each error naming its option.
  std::vector<config::Error> errors;
  for (const char* yaml : {"hll_precision: 3", "hll_precision: 19", "percentile_accuracy: 0",
                           "percentile_accuracy: 0.6", "max_distinct: 0"}) {
    const std::string option = std::string(yaml).substr(0, std::string(yaml).find(':'));
    errors.clear();
    EXPECT_FALSE(
        config::options_from_yaml(kDescriptor, "window: {size: 1s}\n" + std::string(yaml), errors))
        << yaml;
    ASSERT_EQ(errors.size(), 1u) << yaml;
    EXPECT_NE(errors[0].message.find(option + " must be"), std::string::npos)
        << errors[0].to_string();
  }
  for (const char* yaml : {"hll_precision: 4", "hll_precision: 18", "percentile_accuracy: 0.5",
                           "percentile_accuracy: 0.000001"}) {
    CollectingDiagnostics fine;
    EXPECT_TRUE(options_in_error("window: {size: 1s}\n" + std::string(yaml), fine).empty()) << yaml;
  }
}

TEST(WindowOptionsTest, BadMetricsAndNamesAreReportedPerOption) {
  CollectingDiagnostics diag;
  const std::vector<std::string> bad = options_in_error(R"yaml(window: {size: 1s}
group_by: [device]
metrics: {a: median(x), b: "sum()", c: "sum(x", d: count, device: count, window_end: max(v),
          e: [count, count], f: " avg( latency.ms ) "})yaml",
                                                        diag);
  EXPECT_EQ(bad, (std::vector<std::string>{"metrics.a", "metrics.b", "metrics.c", "metrics.device",
                                           "metrics.window_end", "metrics.e"}));
  EXPECT_NE(diag.errors[0].second.find("median(x)"), std::string::npos);
}

TEST(WindowOptionsTest, OutputNamesMustNotCollide) {
  CollectingDiagnostics diag;
  const std::vector<std::string> bad = options_in_error(R"yaml(window: {size: 1s}
group_by: [ts]
metrics: {t2: count}
output: {start: ts, end: t2})yaml",
                                                        diag);
  EXPECT_EQ(bad, (std::vector<std::string>{"group_by", "metrics.t2"}));
}

TEST(WindowOptionsTest, SchemaRequiresAndBoundsTheWindow) {
  std::vector<config::Error> errors;
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "group_by: [a]", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "window: {time: event}", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "window: {size: 500us}", errors));
  EXPECT_FALSE(config::options_from_yaml(kDescriptor, "window: {size: 1s, time: wall}", errors));
  EXPECT_EQ(errors.size(), 4u);
}

TEST(WindowOptionsTest, DefaultsCountInOneGroupPerProcessingTimeWindow) {
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(kDescriptor, "window: {size: 1s}", errors);
  ASSERT_TRUE(options);
  CollectingDiagnostics diag;
  WindowAggregator agg(*options, diag);
  EXPECT_TRUE(diag.errors.empty());
  FakeContext ctx;
  CollectingOutput out;
  agg.start(ctx);
  auto b = std::make_unique<Batch>();
  b->add({}, 0);
  b->add({}, 0);
  agg.consume(ctx, *b);
  agg.flush(ctx, out);
  ASSERT_EQ(out.event_count(), 1u);
  const Value* count = out.batches[0]->find(out.batches[0]->events()[0], "count");
  ASSERT_NE(count, nullptr);
  EXPECT_EQ(count->i, 2);
}

TEST(WindowOptionsTest, EveryOptionHasADoc) {
  for (const OptionSpec& spec : kWindowAggregatorOptions)
    EXPECT_GT(std::strlen(spec.doc), 20u) << spec.name;
  for (const OptionSpec& spec : kWindowSpecOptions)
    EXPECT_GT(std::strlen(spec.doc), 20u) << spec.name;
}

}  // namespace
}  // namespace ingestd::plugins

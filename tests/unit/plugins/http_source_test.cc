#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "fake_context.h"
#include "ingestd/plugin.h"
#include "plugin_test_support.h"
#include "shared/net/gunzip.h"
#include "source/http/body.h"
#include "source/http/http_source.h"
#include "source/http/request.h"

namespace ingestd::plugins {
namespace {

using http_source::BodyFormat;
using ingestd::testing::CollectingDiagnostics;
using ingestd::testing::FakeContext;
using net::Gunzip;

constexpr ComponentDescriptor kDescriptor =
    describe<HttpSource>(Kind::kSource, "http", kHttpSourceDoc, kHttpSourceOptions);

std::unique_ptr<HttpSource> make(const std::string& yaml, CollectingDiagnostics& diag) {
  std::vector<config::Error> errors;
  auto options = config::options_from_yaml(kDescriptor, yaml, errors);
  EXPECT_TRUE(options) << (errors.empty() ? "" : errors.front().to_string());
  if (!options) return nullptr;
  return std::make_unique<HttpSource>(*options, diag);
}

std::vector<std::string> split(std::string_view body, BodyFormat format) {
  std::vector<std::string_view> records;
  std::string error;
  EXPECT_TRUE(http_source::split_records(body, format, records, error)) << error;
  return {records.begin(), records.end()};
}

std::string split_error(std::string_view body) {
  std::vector<std::string_view> records;
  std::string error;
  EXPECT_FALSE(http_source::split_records(body, BodyFormat::kJson, records, error)) << body;
  return error;
}

std::string gzip(std::string_view text) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, text.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

using Records = std::vector<std::string>;

// What the server does with a request's body: prepare it, then append its records to a batch
// (none when it holds no record).
int build_batch(const http_source::Settings& settings, const http_source::Route& route,
                const http_source::Verdict& verdict, std::string_view body, int64_t now_ns,
                http_source::Scratch& scratch, BatchPtr& out) {
  out.reset();
  if (int status = http_source::prepare_body(settings, route, verdict, body, scratch))
    return status;
  if (scratch.records.empty()) return 0;
  out = std::make_unique<Batch>();
  http_source::append_records(*out, route, body, scratch.records, now_ns);
  return 0;
}

TEST(HttpSourceBodyTest, SplitsOneObject) {
  EXPECT_EQ(split(R"({"a":1})", BodyFormat::kJson), Records{R"({"a":1})"});
  EXPECT_EQ(split("  \n{\n  \"a\": {\"b\": [1, 2]}\n}\n\n", BodyFormat::kJson),
            Records{"{\n  \"a\": {\"b\": [1, 2]}\n}"});
}

TEST(HttpSourceBodyTest, SplitsAnArrayIntoItsMembers) {
  EXPECT_EQ(split(R"([{"a":1},{"b":[2,{"c":3}]}])", BodyFormat::kJson),
            (Records{R"({"a":1})", R"({"b":[2,{"c":3}]})"}));
  EXPECT_EQ(split(" [ {\"a\":1} ,\n\t{\"b\":2} ] \n", BodyFormat::kJson),
            (Records{R"({"a":1})", R"({"b":2})"}));
  EXPECT_EQ(split("[]", BodyFormat::kJson), Records{});
  // Members that are not objects are records still: the parser counts them as errors.
  EXPECT_EQ(split(R"([1, "x", {"a":1}])", BodyFormat::kJson),
            (Records{"1", "\"x\"", R"({"a":1})"}));
}

TEST(HttpSourceBodyTest, BracesAndQuotesInsideStringsDoNotCount) {
  EXPECT_EQ(split(R"([{"a":"}]{[,"},{"b":"say \"}\" \\"}])", BodyFormat::kJson),
            (Records{R"({"a":"}]{[,"})", R"({"b":"say \"}\" \\"})"}));
}

TEST(HttpSourceBodyTest, SplitsObjectsOneAfterAnother) {
  EXPECT_EQ(split("{\"a\":1}\n{\"b\":2}\r\n\n  {\"c\":3}", BodyFormat::kJson),
            (Records{R"({"a":1})", R"({"b":2})", R"({"c":3})"}));
  // A line that is no object stays one record, for the parser to count.
  EXPECT_EQ(split("{\"a\":1}\nnot json\n{\"b\":2}", BodyFormat::kJson),
            (Records{R"({"a":1})", "not json", R"({"b":2})"}));
}

TEST(HttpSourceBodyTest, NdjsonIsOneRecordPerLineWithoutEmptyLines) {
  EXPECT_EQ(split("{\"a\":1}\n\n   \n{\"b\":2}\r\n  {\"c\":3}  \n", BodyFormat::kNdjson),
            (Records{R"({"a":1})", R"({"b":2})", R"({"c":3})"}));
  EXPECT_EQ(split("{\"a\":\n1}\n", BodyFormat::kNdjson), (Records{"{\"a\":", "1}"}));
  EXPECT_EQ(split("", BodyFormat::kNdjson), Records{});
  EXPECT_EQ(split(" \n\n", BodyFormat::kJson), Records{});
}

TEST(HttpSourceBodyTest, RefusesBrokenFraming) {
  EXPECT_EQ(split_error(R"([{"a":1},{"b":2})"), "the JSON array opened at byte 0 does not close");
  EXPECT_EQ(split_error(R"([{"a":1} {"b":2}])"),
            "a ',' or ']' is missing in the JSON array at byte 9");
  EXPECT_EQ(split_error(R"([{"a":1},])"), "a JSON array member is missing at byte 9");
  EXPECT_EQ(split_error(R"([,{"a":1}])"), "a JSON array member is missing at byte 1");
  EXPECT_EQ(split_error("{\"a\":1}\n{\"b\":"), "the JSON object opened at byte 8 does not close");
  EXPECT_EQ(split_error(R"([{"a":"]}])"), "the JSON array opened at byte 0 does not close");
}

TEST(HttpSourceBodyTest, ContentTypes) {
  EXPECT_EQ(http_source::body_format("application/json"), BodyFormat::kJson);
  EXPECT_EQ(http_source::body_format("Application/JSON; charset=utf-8"), BodyFormat::kJson);
  EXPECT_EQ(http_source::body_format(""), BodyFormat::kJson);
  EXPECT_EQ(http_source::body_format("application/vnd.api+json"), BodyFormat::kJson);
  EXPECT_EQ(http_source::body_format("application/x-ndjson"), BodyFormat::kNdjson);
  EXPECT_EQ(http_source::body_format("application/jsonl"), BodyFormat::kNdjson);
  EXPECT_EQ(http_source::body_format("text/plain"), std::nullopt);
  EXPECT_EQ(http_source::body_format("application/x-www-form-urlencoded"), std::nullopt);
  EXPECT_EQ(http_source::body_format("application/+json"), std::nullopt);
}

TEST(HttpSourceGunzipTest, InflatesWithinTheLimit) {
  Gunzip g;
  std::string out;
  const std::string text = "{\"a\":1}\n{\"b\":2}\n";
  ASSERT_EQ(g.inflate(gzip(text), 1024, out), Gunzip::Result::kOk);
  EXPECT_EQ(out, text);
  // Reused for the next request; two members one after another are one body.
  ASSERT_EQ(g.inflate(gzip("x") + gzip("y"), 1024, out), Gunzip::Result::kOk);
  EXPECT_EQ(out, "xy");
  // Exactly at the limit is taken.
  ASSERT_EQ(g.inflate(gzip(std::string(1000, 'z')), 1000, out), Gunzip::Result::kOk);
}

TEST(HttpSourceGunzipTest, StopsABombAtTheLimit) {
  Gunzip g;
  std::string out;
  const std::string bomb = gzip(std::string(16 << 20, '\0'));
  EXPECT_LT(bomb.size(), 32u << 10);
  EXPECT_EQ(g.inflate(bomb, 1 << 20, out), Gunzip::Result::kTooLarge);
  // Decompression stopped at once: the output never grew far past the limit.
  EXPECT_LE(out.capacity(), 2u << 20);
  EXPECT_EQ(g.inflate(gzip(std::string(1001, 'z')), 1000, out), Gunzip::Result::kTooLarge);
}

TEST(HttpSourceGunzipTest, TellsTruncatedFromCorrupt) {
  Gunzip g;
  std::string out;
  const std::string whole = gzip(std::string(5000, 'q') + "end");
  EXPECT_EQ(g.inflate(std::string_view(whole).substr(0, whole.size() / 2), 1 << 20, out),
            Gunzip::Result::kTruncated);
  EXPECT_EQ(g.inflate(std::string_view(whole).substr(0, whole.size() - 4), 1 << 20, out),
            Gunzip::Result::kTruncated);
  EXPECT_EQ(g.inflate("", 1 << 20, out), Gunzip::Result::kTruncated);
  EXPECT_EQ(g.inflate("{\"plain\":true}", 1 << 20, out), Gunzip::Result::kCorrupt);
  EXPECT_EQ(g.inflate(whole + "junk", 1 << 20, out), Gunzip::Result::kCorrupt);
  // And works again after failures.
  ASSERT_EQ(g.inflate(gzip("ok"), 10, out), Gunzip::Result::kOk);
  EXPECT_EQ(out, "ok");
}

TEST(HttpSourceRequestTest, BuildsOneBatchWithTheRouteFields) {
  http_source::Settings settings;
  http_source::Route route;
  route.fields = {{"stream", "visit"}, {"tier", "edge"}};
  http_source::Verdict verdict;
  http_source::Scratch scratch;
  BatchPtr batch;
  std::string body = R"([{"a":1}, {"a":2}, {"a":3}])";
  ASSERT_EQ(build_batch(settings, route, verdict, body, 42, scratch, batch), 0);
  ASSERT_TRUE(batch);
  body.assign(body.size(), 'x');  // the batch holds its own copy
  ASSERT_EQ(batch->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const Event& e = batch->events()[i];
    EXPECT_EQ(e.raw, "{\"a\":" + std::to_string(i + 1) + "}");
    EXPECT_EQ(e.time_ns, 42);
    ASSERT_EQ(e.field_count, 2u);
    EXPECT_EQ(batch->find(e, "stream")->s, "visit");
    EXPECT_EQ(batch->find(e, "tier")->s, "edge");
  }
  // No records: no batch, and no error.
  ASSERT_EQ(build_batch(settings, route, verdict, "\n \n", 42, scratch, batch), 0);
  EXPECT_FALSE(batch);
}

TEST(HttpSourceRequestTest, RequestsOfSeveralRoutesShareABatch) {
  http_source::Settings settings;
  http_source::Route visit, activity;
  visit.fields = {{"stream", "visit"}};
  activity.fields = {{"stream", "activity"}, {"tier", "edge"}};
  http_source::Verdict verdict;
  http_source::Scratch scratch;
  Batch batch;
  for (int i = 0; i < 50; ++i) {
    std::string body = "{\"i\":" + std::to_string(i) + "}\n{\"j\":" + std::to_string(i) + "}";
    std::string_view view = body;
    ASSERT_EQ(http_source::prepare_body(settings, i % 2 ? activity : visit, verdict, view, scratch),
              0);
    http_source::append_records(batch, i % 2 ? activity : visit, view, scratch.records, i);
  }
  ASSERT_EQ(batch.size(), 100u);
  for (size_t k = 0; k < batch.size(); ++k) {
    const Event& e = batch.events()[k];
    const int i = static_cast<int>(k / 2);
    EXPECT_EQ(e.raw, (k % 2 ? "{\"j\":" : "{\"i\":") + std::to_string(i) + "}");
    EXPECT_EQ(e.time_ns, i);
    EXPECT_EQ(batch.find(e, "stream")->s, i % 2 ? "activity" : "visit");
    EXPECT_EQ(e.field_count, i % 2 ? 2u : 1u);
  }
}

TEST(HttpSourceRequestTest, GzipBodiesAndTheirFailures) {
  http_source::Settings settings;
  settings.max_decompressed_size = 4096;
  http_source::Route route;
  http_source::Verdict verdict;
  verdict.gzip = true;
  verdict.format = BodyFormat::kNdjson;
  http_source::Scratch scratch;
  BatchPtr batch;
  ASSERT_EQ(
      build_batch(settings, route, verdict, gzip("{\"a\":1}\n{\"a\":2}\n"), 1, scratch, batch), 0);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->size(), 2u);
  EXPECT_EQ(build_batch(settings, route, verdict, gzip(std::string(5000, ' ')), 1, scratch, batch),
            413);
  EXPECT_EQ(scratch.error, "the body decompresses to more than 4096 bytes");
  const std::string whole = gzip("{\"a\":1}\n");
  EXPECT_EQ(build_batch(settings, route, verdict,
                        std::string_view(whole).substr(0, whole.size() - 3), 1, scratch, batch),
            400);
  EXPECT_EQ(scratch.error, "the gzip body is truncated");
  verdict.gzip = false;
  verdict.format = BodyFormat::kJson;
  EXPECT_EQ(build_batch(settings, route, verdict, "[{}", 1, scratch, batch), 400);
}

TEST(HttpSourceRequestTest, ARouteRequirementRefusesTheWholeBodyNamingRecordAndField) {
  http_source::Settings settings;
  http_source::Route route;
  route.require = {{"username", http_source::JsonKind::kString},
                   {"count", http_source::JsonKind::kNumber},
                   {"n", http_source::JsonKind::kInteger},
                   {"tags", http_source::JsonKind::kAny}};
  http_source::Verdict verdict;
  http_source::Scratch scratch;
  BatchPtr batch;
  auto status = [&](std::string_view body) {
    return build_batch(settings, route, verdict, body, 1, scratch, batch);
  };
  const std::string good = R"({"username":"ann","count":1.5,"n":3,"tags":null})";
  EXPECT_EQ(status(good), 0);
  EXPECT_EQ(status("[" + good + "," + good + "]"), 0);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->size(), 2u);
  struct Case {
    std::string body, error;
  };
  for (const Case& c : std::vector<Case>{
           {"[" + good + R"(,{"username":"bob","count":"2","n":3,"tags":[]}])",
            "record 2 of the body: field 'count' must be a number"},
           {R"({"username":7,"count":1,"n":3,"tags":1})", "field 'username' must be a string"},
           {R"({"username":"a","count":1,"n":3.5,"tags":1})", "field 'n' must be an integer"},
           {R"({"username":"a","count":1,"n":3})", "no field 'tags'"},
           {R"({"username":"a","count":1,"n":3,"tags":tru})", "not valid JSON"},
       }) {
    EXPECT_EQ(status(c.body), 400) << c.body;
    EXPECT_NE(scratch.error.find(c.error), std::string::npos) << scratch.error;
    EXPECT_FALSE(batch) << c.body;  // nothing of it is delivered
  }
  EXPECT_EQ(status("[1]"), 400);  // split_records refuses members that are not objects
}

TEST(HttpSourceRequestTest, ChecksMethodTokenAndTypes) {
  http_source::Settings settings;
  http_source::Route route;
  auto check = [&](std::string_view method, std::string_view type, std::string_view encoding,
                   std::string_view auth) {
    return http_source::check_request(settings, route, method, type, encoding, auth).status;
  };
  EXPECT_EQ(check("POST", "application/json", "", ""), 0);
  EXPECT_EQ(check("PUT", "application/json", "", ""), 405);
  EXPECT_EQ(check("GET", "", "", ""), 405);
  route.put = true;
  EXPECT_EQ(check("PUT", "application/json", "", ""), 0);
  EXPECT_EQ(check("POST", "text/csv", "", ""), 415);
  EXPECT_EQ(check("POST", "application/json", "br", ""), 415);
  EXPECT_TRUE(http_source::check_request(settings, route, "POST", "", "gzip", "").gzip);
  settings.require_content_type = true;
  EXPECT_EQ(check("POST", "", "", ""), 415);
  EXPECT_EQ(check("POST", "application/json", "", ""), 0);
  settings.require_content_type = false;
  settings.token = "s3cret";
  EXPECT_EQ(check("POST", "application/json", "", ""), 401);
  EXPECT_EQ(check("POST", "application/json", "", "Bearer s3cre"), 401);
  EXPECT_EQ(check("POST", "application/json", "", "Bearer s3cret!"), 401);
  EXPECT_EQ(check("POST", "application/json", "", "Basic s3cret"), 401);
  EXPECT_EQ(check("POST", "application/json", "", "Bearer s3cret"), 0);
  EXPECT_EQ(check("POST", "application/json", "", "bearer s3cret"), 0);
}

TEST(HttpSourceRequestTest, FindsRoutesByPath) {
  std::vector<http_source::Route> routes(2);
  routes[0].path = "/api/visit/v1/";
  routes[1].path = "/event";
  EXPECT_EQ(http_source::find_route(routes, "/api/visit/v1/"), &routes[0]);
  EXPECT_EQ(http_source::find_route(routes, "/api/visit/v1"), &routes[0]);
  EXPECT_EQ(http_source::find_route(routes, "/api/visit/v1/?src=app"), &routes[0]);
  EXPECT_EQ(http_source::find_route(routes, "/event/"), &routes[1]);
  EXPECT_EQ(http_source::find_route(routes, "/api/visit"), nullptr);
  EXPECT_EQ(http_source::find_route(routes, "/"), nullptr);
}

TEST(HttpSourceOptionsTest, ReadsRoutesAndLimits) {
  CollectingDiagnostics diag;
  auto source = make(
      "listen: '[::1]:0'\n"
      "routes:\n"
      "  - {path: /api/visit/v1/, fields: {stream: visit}}\n"
      "  - {path: /api/activity/v1/, name: act, methods: [POST, put]}\n"
      "ack: durable\nretry_after: 1500ms\nmax_body_size: 1MiB\n",
      diag);
  ASSERT_TRUE(source);
  EXPECT_TRUE(diag.errors.empty())
      << diag.errors.front().first << ": " << diag.errors.front().second;
  const auto& s = source->settings();
  EXPECT_EQ(s.host, "::1");
  EXPECT_EQ(s.port, 0);
  ASSERT_EQ(s.routes.size(), 2u);
  EXPECT_EQ(s.routes[0].name, "api_visit_v1");
  EXPECT_TRUE(s.routes[0].post);
  EXPECT_FALSE(s.routes[0].put);
  ASSERT_EQ(s.routes[0].fields.size(), 1u);
  EXPECT_EQ(s.routes[0].fields[0], (std::pair<std::string, std::string>{"stream", "visit"}));
  EXPECT_EQ(s.routes[1].name, "act");
  EXPECT_TRUE(s.routes[1].put);
  EXPECT_TRUE(s.durable);
  EXPECT_EQ(s.retry_after_s, 2);
  EXPECT_EQ(s.max_body_size, 1u << 20);
}

TEST(HttpSourceOptionsTest, ReportsEveryBadOption) {
  CollectingDiagnostics diag;
  make(
      "listen: 'example.com:80'\n"
      "routes:\n"
      "  - {path: api, methods: [GET]}\n"
      "  - {path: /a/, name: 'a b'}\n"
      "  - {path: /a}\n"
      "  - {path: /u, name: unrouted}\n"
      "  - {path: /v, fields: {k: [x, y]}}\n"
      "token: ''\ntoken_file: /etc/token\n",
      diag);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"listen",
       "'example.com' is not an IP address (names other than localhost are not "
       "resolved)"},
      {"routes.0.path", "'api' must begin with '/'"},
      {"routes.0.methods", "'GET' is not taken: POST or PUT"},
      {"routes.0.methods", "names no method: POST, PUT or both"},
      {"routes.1.name", "'a b' may hold only letters, digits, '_' and '-'"},
      {"routes.2.path", "'/a' is the path of another route"},
      {"routes.3.name", "'unrouted' names the counters of requests that match no route"},
      {"routes.4.fields.k", "must be one string"},
      {"token", "is empty (an unset ${VAR}?): set a token or remove the option"},
  };
  EXPECT_EQ(diag.errors, expected);

  CollectingDiagnostics more;
  make("listen: '127.0.0.1:99999'\nroutes: [{path: /x}]\ntoken: t\ntoken_file: /f\n", more);
  expected = {{"listen", "'99999' is not a port (0 to 65535)"},
              {"token_file", "is set with token: choose one"}};
  EXPECT_EQ(more.errors, expected);

  CollectingDiagnostics names;
  make("listen: '8080'\nroutes: [{path: /a/b}, {path: /a_b}]\n", names);
  expected = {
      {"listen", "'8080' is not host:port (e.g. 127.0.0.1:8080)"},
      {"routes.1.name", "'a_b' is the name of another route (set `name` to tell them apart)"}};
  EXPECT_EQ(names.errors, expected);
}

TEST(HttpSourceOptionsTest, StartFailsOnAMissingOrEmptyTokenFile) {
  ingestd::testing::TempDir dir;
  const std::string empty = dir.file("empty.token");
  { std::ofstream(empty) << " \n"; }
  for (const std::string& file : {dir.file("missing.token"), empty}) {
    CollectingDiagnostics diag;
    auto source =
        make("listen: 127.0.0.1:0\nroutes: [{path: /e}]\ntoken_file: " + file + "\n", diag);
    ASSERT_TRUE(source);
    EXPECT_TRUE(diag.errors.empty());
    FakeContext ctx;
    EXPECT_FALSE(source->start(ctx));  // before any socket: the fake context has no io_context
    ASSERT_FALSE(ctx.logs.empty());
    EXPECT_EQ(ctx.logs.back().first, LogLevel::kError);
    EXPECT_NE(ctx.logs.back().second.find(file), std::string::npos) << ctx.logs.back().second;
  }
}

TEST(HttpSourceOptionsTest, NamesRoutesAfterTheirPath) {
  EXPECT_EQ(http_source::route_name("/api/visit/v1/"), "api_visit_v1");
  EXPECT_EQ(http_source::route_name("/event"), "event");
  EXPECT_EQ(http_source::route_name("/"), "root");
  EXPECT_EQ(http_source::route_name("//a--b//"), "a_b");
}

TEST(HttpSourceOptionsTest, CountersAreBoundAtStartForEveryRouteAndStatus) {
  CollectingDiagnostics diag;
  auto source = make("listen: 127.0.0.1:0\nroutes: [{path: /e, name: ev}]\n", diag);
  ASSERT_TRUE(source);
  http_source::StatusCounters counters;
  FakeContext ctx;
  counters.bind(ctx, "ev");
  counters.count(202);
  counters.count(202);
  counters.count(431);
  counters.count(299);  // not a status the source answers: ignored
  EXPECT_EQ(ctx.count("requests.ev.202"), 2u);
  EXPECT_EQ(ctx.count("requests.ev.431"), 1u);
  EXPECT_EQ(ctx.count("requests.ev.200"), 0u);
}

}  // namespace
}  // namespace ingestd::plugins

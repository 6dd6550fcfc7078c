// The admin API's answers, apart from the network, with a DaemonApi that records what it is asked.
#include "admin/routes.h"

#include <gtest/gtest.h>

namespace ingestd::admin {
namespace {

class RecordingApi final : public control::DaemonApi {
 public:
  control::ReloadReport reload() override { return {}; }
  std::vector<std::string> validate(const std::string&) override { return {}; }
  std::string status_json() override { return "{\"state\":\"running\"}"; }
  bool set_log_level(const std::string&) override { return true; }
  std::string state() const override { return "running"; }
  std::string config_path() const override { return "p.yaml"; }
  control::ReloadReport last_reload() const override { return {}; }
  std::string aggregates_json(const std::string& component,
                              const Aggregator::InspectQuery& query) override {
    asked = component;
    last = query;
    if (component != "sps") throw NoSuchAggregator("no aggregator named '" + component + "'");
    return rows;
  }
  std::vector<runtime::Family> metric_families() override {
    runtime::Family f;
    f.name = "up";
    f.help = "Up.";
    f.samples.push_back({{}, 1, {}});
    return {f};
  }
  Health health() override { return health_now; }

  std::string asked;
  Aggregator::InspectQuery last;
  std::string rows = "[]";
  Health health_now{true, "running"};
};

Response get(RecordingApi& api, std::string target, std::string token = "",
             std::string authorization = "", std::string method = "GET") {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.authorization = std::move(authorization);
  return route(api, r, token);
}

TEST(Routes, UnknownPathsAre404AndOtherMethods405) {
  RecordingApi api;
  EXPECT_EQ(get(api, "/index.html").status, 404);
  EXPECT_EQ(get(api, "/ui/").status, 404);
  EXPECT_EQ(get(api, "/ui/nope.js").status, 404);
  EXPECT_EQ(get(api, "/ui/../metrics").status, 404);
  EXPECT_EQ(get(api, "/metricsx").status, 404);
  EXPECT_EQ(get(api, "/api/v1/statuses").status, 404);
  Response r = get(api, "/metrics", "", "", "POST");
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Allow");
  EXPECT_EQ(get(api, "/health", "", "", "HEAD").status, 200);
}

TEST(Routes, MetricsHealthAndStatus) {
  RecordingApi api;
  Response m = get(api, "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(m.body, "# HELP up Up.\n# TYPE up gauge\nup 1\n");
  Request om;
  om.method = "GET";
  om.target = "/metrics";
  om.accept = "application/openmetrics-text; version=1.0.0";
  EXPECT_EQ(route(api, om, "").body, "# HELP up Up.\n# TYPE up gauge\nup 1\n# EOF\n");
  Response h = get(api, "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok: running\n");
  api.health_now = {false, "sink k: circuit breaker open for 61.0s"};
  h = get(api, "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.body, "unhealthy: sink k: circuit breaker open for 61.0s\n");
  EXPECT_EQ(get(api, "/api/v1/status").body, "{\"state\":\"running\"}\n");
}

TEST(Routes, BearerTokenIsRequiredWhenSet) {
  RecordingApi api;
  EXPECT_EQ(get(api, "/metrics", "s3cret").status, 401);
  EXPECT_EQ(get(api, "/metrics", "s3cret", "Bearer wrong").status, 401);
  EXPECT_EQ(get(api, "/metrics", "s3cret", "Bearer s3cre").status, 401);
  EXPECT_EQ(get(api, "/metrics", "s3cret", "Basic s3cret").status, 401);
  EXPECT_EQ(get(api, "/metrics", "s3cret", "Bearer s3cret").status, 200);
  EXPECT_EQ(get(api, "/health", "s3cret", "bearer s3cret").status, 200);
  // Unknown paths say 404 whatever the token: nothing is served there.
  EXPECT_EQ(get(api, "/nope", "s3cret").status, 404);
}

TEST(Routes, AggregatesPassTheQueryOn) {
  RecordingApi api;
  api.rows = "[{\"device\":\"tv\",\"n\":3}]";
  Response r = get(api,
                   "/api/v1/aggregates/sps?where=device%3Dtv&where=title=a+b&from=1700000000"
                   "&to=1700000060.5&limit=10");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "[{\"device\":\"tv\",\"n\":3}]\n");
  EXPECT_EQ(api.asked, "sps");
  using Where = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(api.last.where, (Where{{"device", "tv"}, {"title", "a b"}}));
  EXPECT_EQ(api.last.from_ns, 1'700'000'000'000'000'000);
  EXPECT_EQ(api.last.to_ns, 1'700'000'060'500'000'000);
  EXPECT_EQ(api.last.max_rows, 10u);
}

TEST(Routes, AggregatesRefuseBadInput) {
  RecordingApi api;
  EXPECT_EQ(get(api, "/api/v1/aggregates/nope").status, 404);
  EXPECT_EQ(get(api, "/api/v1/aggregates/").status, 404);
  EXPECT_EQ(get(api, "/api/v1/aggregates/a/b").status, 404);
  for (const char* bad : {"?from=yesterday", "?to=1e400", "?where=novalue", "?where==x", "?limit=0",
                          "?limit=-1", "?color=red", "?from", "?where=%zz", "?from=20&to=10"}) {
    Response r = get(api, std::string("/api/v1/aggregates/sps") + bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
    EXPECT_EQ(r.body.rfind("{\"error\":", 0), 0u) << r.body;
  }
}

TEST(Routes, TotalSumsTheGroupsOfEachWindow) {
  RecordingApi api;
  api.rows =
      "[{\"window_start\":\"t0\",\"window_end\":\"t1\",\"device\":\"a\",\"n\":3,\"avg\":1.5,"
      "\"state\":\"closed\"},"
      "{\"window_start\":\"t0\",\"window_end\":\"t1\",\"device\":\"b\",\"n\":4,\"avg\":2.0},"
      "{\"window_start\":\"t1\",\"window_end\":\"t2\",\"device\":\"a\",\"n\":10}]";
  Response r = get(api, "/api/v1/aggregates/sps/total");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            "[{\"window_start\":\"t0\",\"window_end\":\"t1\",\"groups\":2,\"n\":7,\"avg\":3.5},"
            "{\"window_start\":\"t1\",\"window_end\":\"t2\",\"groups\":1,\"n\":10}]\n");
  EXPECT_EQ(total_json("[]"), "[]");
  EXPECT_THROW(total_json("{}"), std::runtime_error);
}

std::string header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

TEST(Routes, DashboardIsServedWithoutTheTokenAndRevalidated) {
  RecordingApi api;
  Response page = get(api, "/", "secret");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<script src=\"/ui/app.js\""), std::string::npos);
  EXPECT_EQ(header(page, "Cache-Control"), "no-cache");
  const std::string etag = header(page, "ETag");
  ASSERT_GT(etag.size(), 2u);
  EXPECT_EQ(etag.front(), '"');
  EXPECT_EQ(etag.back(), '"');
  EXPECT_NE(header(page, "Content-Security-Policy").find("default-src 'self'"), std::string::npos);

  Response script = get(api, "/ui/app.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(header(script, "ETag"), etag);
  EXPECT_EQ(get(api, "/ui/style.css").content_type, "text/css; charset=utf-8");

  for (const std::string& validator : {etag, "W/" + etag, "\"x\", " + etag, std::string("*")}) {
    Request r;
    r.method = "GET";
    r.target = "/";
    r.if_none_match = validator;
    Response again = route(api, r, "");
    EXPECT_EQ(again.status, 304) << validator;
    EXPECT_TRUE(again.body.empty());
    EXPECT_EQ(header(again, "ETag"), etag);
  }
  Request stale;
  stale.method = "GET";
  stale.target = "/";
  stale.if_none_match = "\"other\"";
  EXPECT_EQ(route(api, stale, "").status, 200);

  EXPECT_EQ(get(api, "/", "", "", "POST").status, 405);
  Response head = get(api, "/ui/app.js", "", "", "HEAD");
  EXPECT_EQ(head.status, 200);
  // The data the page reads still needs the token.
  EXPECT_EQ(get(api, "/api/v1/status", "secret").status, 401);
}

TEST(Routes, UrlDecoding) {
  std::string out;
  EXPECT_TRUE(url_decode("a%20b+c%3D", out));
  EXPECT_EQ(out, "a b c=");
  EXPECT_FALSE(url_decode("%2", out));
  EXPECT_FALSE(url_decode("%", out));
  EXPECT_FALSE(url_decode("%g0", out));
}

}  // namespace
}  // namespace ingestd::admin

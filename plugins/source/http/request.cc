#include "request.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace ingestd::plugins::http_source {

namespace {

std::string_view without_trailing_slash(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return path;
}

// Compares without stopping at the first difference, so that the time taken tells nothing of
// how much of a token was right.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ (i < b.size() ? b[i] : 0);
  return diff == 0;
}

}  // namespace

void StatusCounters::bind(Context& ctx, std::string_view route) {
  for (size_t i = 0; i < std::size(kStatuses); ++i)
    counters_[i] = &ctx.counter(fmt::format("requests.{}.{}", route, kStatuses[i]));
}

void StatusCounters::count(int status) const {
  for (size_t i = 0; i < std::size(kStatuses); ++i)
    if (kStatuses[i] == status) {
      if (counters_[i]) counters_[i]->add();
      return;
    }
}

void SourceCounters::bind(Context& ctx) {
  records = &ctx.counter("records");
  bytes = &ctx.counter("bytes");
  connections_opened = &ctx.counter("connections_opened");
  connections_closed = &ctx.counter("connections_closed");
  connections_refused = &ctx.counter("connections_refused");
  rejected = &ctx.counter("rejected");
  timeouts = &ctx.counter("timeouts");
}

const Route* find_route(const std::vector<Route>& routes, std::string_view target) {
  std::string_view path = without_trailing_slash(target.substr(0, target.find('?')));
  for (const Route& r : routes)
    if (without_trailing_slash(r.path) == path) return &r;
  return nullptr;
}

Verdict check_request(const Settings& settings, const Route& route, std::string_view method,
                      std::string_view content_type, std::string_view content_encoding,
                      std::string_view authorization) {
  Verdict v;
  if (!((route.post && method == "POST") || (route.put && method == "PUT"))) {
    v.status = 405;
    v.message = "method not allowed on this route";
    return v;
  }
  if (!settings.token.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.size() <= kBearer.size() ||
        !iequals(authorization.substr(0, kBearer.size()), kBearer) ||
        !same_secret(authorization.substr(kBearer.size()), settings.token)) {
      v.status = 401;
      v.message = "a valid bearer token is required";
      return v;
    }
  }
  std::optional<BodyFormat> format = body_format(content_type);
  if (settings.require_content_type &&
      content_type.find_first_not_of(" \t") == std::string_view::npos) {
    v.status = 415;
    v.message = "a Content-Type is required: application/json or application/x-ndjson";
    return v;
  }
  if (!format) {
    v.status = 415;
    v.message =
        "Content-Type must be application/json or application/x-ndjson (or another JSON type: see "
        "the source's documentation)";
    return v;
  }
  v.format = *format;
  if (iequals(content_encoding, "gzip") || iequals(content_encoding, "x-gzip")) {
    v.gzip = true;
  } else if (!content_encoding.empty() && !iequals(content_encoding, "identity")) {
    v.status = 415;
    v.message = "Content-Encoding must be gzip or identity";
  }
  return v;
}

int prepare_body(const Settings& settings, const Route& route, const Verdict& verdict,
                 std::string_view& body, Scratch& scratch) {
  if (verdict.gzip) {
    switch (scratch.gunzip.inflate(body, settings.max_decompressed_size, scratch.inflated)) {
      case net::Gunzip::Result::kOk:
        break;
      case net::Gunzip::Result::kTooLarge:
        scratch.error = fmt::format("the body decompresses to more than {} bytes",
                                    settings.max_decompressed_size);
        return 413;
      case net::Gunzip::Result::kTruncated:
        scratch.error = "the gzip body is truncated";
        return 400;
      case net::Gunzip::Result::kCorrupt:
        scratch.error = "the gzip body is corrupt";
        return 400;
    }
    body = scratch.inflated;
  }
  scratch.records.clear();
  if (!split_records(body, verdict.format, scratch.records, scratch.error)) return 400;
  if (!route.require.empty()) {
    for (size_t i = 0; i < scratch.records.size(); ++i) {
      std::string why;
      if (!scratch.checker.check(scratch.records[i], route.require, why)) {
        scratch.error = fmt::format("record {} of the body: {}", i + 1, why);
        return 400;
      }
    }
  }
  return 0;
}

void append_records(Batch& batch, const Route& route, std::string_view body,
                    const std::vector<std::string_view>& records, int64_t now_ns) {
  const size_t n_fields = std::min(route.fields.size(), kMaxRouteFields);
  // Later appends grow the vectors geometrically; an exact reserve each time would not.
  if (batch.empty()) batch.reserve(records.size(), records.size() * n_fields);
  // One copy of the body; every record is a view into it.
  char* copy = batch.allocate(body.size());
  std::memcpy(copy, body.data(), body.size());
  // The route's fields, copied once and shared by the events.
  Field fields[kMaxRouteFields];
  for (size_t i = 0; i < n_fields; ++i)
    fields[i] = {batch.copy_unpadded(route.fields[i].first),
                 Value::string(batch.copy_unpadded(route.fields[i].second))};
  for (std::string_view record : records) {
    Event& e = batch.add({copy + (record.data() - body.data()), record.size()}, now_ns);
    for (size_t i = 0; i < n_fields; ++i) batch.append_field(e, fields[i].key, fields[i].value);
  }
}

}  // namespace ingestd::plugins::http_source

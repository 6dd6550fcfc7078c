// sink/http: what a request is made of, apart from the network: the URL, the body built from a
// batch, gzip, and what an answer means for the batch. No Boost.Beast here, so that this header
// costs nothing to include and its functions are tested without a socket.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ingestd/component.h"
#include "ingestd/event.h"
#include "ingestd/json.h"
#include "ingestd/schema.h"

namespace ingestd::plugins::http {

// An http:// URL taken apart. `target` is the path and query sent in the request line ("/" when
// the URL has none); `host` is without the brackets of an IPv6 literal.
struct Url {
  std::string host;
  uint16_t port = 80;
  std::string target = "/";
  std::string host_header;  // the Host header's value: host, bracketed for IPv6, with a port not 80
};

// Parses `text`; on failure returns nullopt and says why in `error` (https, user info, bad port,
// fragment...).
std::optional<Url> parse_url(std::string_view text, std::string& error);

using Headers = std::vector<std::pair<std::string, std::string>>;

// Empty when `name` may be set by the `headers` option, else why not: not an HTTP token, or a
// header the sink owns (Content-Length, Transfer-Encoding, Connection, Content-Encoding).
std::string header_name_problem(std::string_view name);
// Empty when `value` may be sent as a header value, else why not (CR, LF or NUL in it).
std::string header_value_problem(std::string_view value);
// Reads a `headers` option (name: value; a list value sends the header once per element) into
// `out`, in order. Refuses, each reported at "headers.<name>": a name in `owned`, the component's
// own ("'<name>' <owned_why>", compared without case), a name header_name_problem() refuses, and
// a value header_value_problem() refuses. Returns false when anything was refused.
bool read_headers(const OptionValue& headers, std::initializer_list<std::string_view> owned,
                  std::string_view owned_why, Headers& out, Diagnostics& diag);

enum class Format { kNdjson, kJsonArray };
Format format_from(std::string_view name);  // "ndjson" for anything but "json_array"
const char* content_type(Format format);

// Appends to `out` the body for events[first, ...) of `batch`, taking events while the body stays
// within max_body bytes (0: no limit) but always at least one, and returns the index after the
// last event taken. `out` is cleared first. ndjson: one line per event (json::append_line);
// json_array: the same texts, without newlines, as the elements of one JSON array.
size_t build_body(std::string& out, const Batch& batch, size_t first, Format format,
                  json::Encoding encoding, uint64_t max_body);

// Compresses `in` as one gzip member (RFC 1952) into `out` (replaced). False, with the reason in
// `error`, when zlib fails (out of memory).
bool gzip(std::string_view in, std::string& out, std::string& error);

// The delay a Retry-After value asks for, in ns from now_ns (wall clock): delta-seconds or an
// HTTP-date (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT"). A date in the past is 0; nullopt when
// the value is empty or neither form.
std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now_ns);

// An HTTP answer as the sink needs it.
struct Response {
  int status = 0;
  std::string reason;       // the server's reason phrase, else the standard one, else empty
  std::string body;         // the start of the body, for error texts
  std::string retry_after;  // the Retry-After header's value, empty when absent
};

// What an answer means for the batch: 2xx kOk; 408, 429 and 5xx kRetryable (with Retry-After as
// retry_after_ns when 429 or 503 carry one); anything else kPermanent: the request itself is
// refused, so sending it again cannot help. Errors name the status, the reason phrase and the
// first 200 bytes of the body.
SinkResult classify(const Response& response, int64_t now_ns);

}  // namespace ingestd::plugins::http

// ingestd-loadgen: the HTTP/1.1 it speaks: the URL it posts to, the request head, and reading
// the answers back. No sockets here, so that these are tested alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ingestd::loadgen {

// http://host[:port][/path]; https is not supported (say so rather than send plain text).
struct Url {
  std::string host;
  uint16_t port = 80;
  std::string target = "/";  // path and query, as sent in the request line
};
// The URL, or nullopt with the reason in `error`.
std::optional<Url> parse_url(std::string_view text, std::string& error);

// "Name: value" of --header into (name, value) trimmed; nullopt when there is no ':' or no name.
std::optional<std::pair<std::string, std::string>> parse_header(std::string_view text);

// The head of every request up to and including "Content-Length: " (the length and the blank
// line follow per request): POST, Host, Content-Type, Content-Encoding when gzip, the extra
// headers in order.
std::string request_head(const Url& url, std::string_view content_type, bool gzip,
                         const std::vector<std::pair<std::string, std::string>>& headers);

// Reads one answer at a time from the bytes of a keep-alive connection: the status line, the
// header (Content-Length, Transfer-Encoding: chunked, Connection: close) and the body, which is
// skipped. Answers without a length (neither Content-Length nor chunked, and not 1xx, 204 or
// 304) end when the server closes: call finish_at_eof() then. Not thread-safe; reset() before
// each request.
class ResponseParser {
 public:
  enum class State { kNeedMore, kComplete, kError };

  void reset();
  // Takes the next bytes read. kComplete once the whole answer is in (bytes after it are
  // ignored: the client sends one request at a time); kError on a malformed answer.
  State feed(std::string_view data);
  // The server closed the connection: kComplete when the answer ends at the close.
  State finish_at_eof();

  int status() const { return status_; }
  bool keep_alive() const { return keep_alive_; }
  // Why the last kError.
  const std::string& error() const { return error_; }

 private:
  enum class Phase { kHead, kBody, kChunkSize, kChunkData, kChunkCrlf, kTrailer, kUntilClose };
  State parse_head();
  State fail(std::string_view why);

  Phase phase_ = Phase::kHead;
  std::string head_;  // kept capacity: no allocation after the first answers
  int status_ = 0;
  bool keep_alive_ = true;
  uint64_t remaining_ = 0;  // body or chunk bytes still to skip
  std::string line_;        // chunk-size and trailer lines
  std::string error_;
};

}  // namespace ingestd::loadgen

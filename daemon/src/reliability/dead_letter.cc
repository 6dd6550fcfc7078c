#include "reliability/dead_letter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <absl/strings/escaping.h>
#include <fmt/format.h>
#include <simdjson.h>

#include "ingestd/json.h"

namespace ingestd::reliability {

namespace {

void append_rfc3339(std::string& out, int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1'000'000'000);
  tm t{};
  gmtime_r(&secs, &t);
  out += fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.tm_year + 1900, t.tm_mon + 1,
                     t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, (ns / 1'000'000) % 1000);
}

// `"key":"text"` when text is valid UTF-8, else `"key_base64":"..."`.
void append_text_member(std::string& out, std::string_view key, std::string_view text) {
  out += '"';
  out += key;
  if (simdjson::validate_utf8(text.data(), text.size())) {
    out += "\":";
    json::append_string(out, text);
    return;
  }
  out += "_base64\":\"";
  out += absl::Base64Escape(absl::string_view(text.data(), text.size()));
  out += '"';
}

}  // namespace

DeadLetterFile::DeadLetterFile(std::filesystem::path path, std::string component,
                               const Clock& clock)
    : path_(std::move(path)), component_(std::move(component)), clock_(clock) {}

DeadLetterFile::~DeadLetterFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string DeadLetterFile::line(std::string_view component, int64_t time_ns, std::string_view raw,
                                 std::string_view reason) {
  std::string out = "{\"time\":\"";
  append_rfc3339(out, time_ns);
  out += "\",\"component\":";
  json::append_string(out, component);
  out += ',';
  append_text_member(out, "reason", reason);
  out += ',';
  append_text_member(out, "raw", raw);
  out += "}\n";
  return out;
}

bool DeadLetterFile::write(std::string_view raw, std::string_view reason, std::string& error) {
  std::string text = line(component_, clock_.now_ns(), raw, reason);
  std::lock_guard lock(mu_);
  if (fd_ < 0 && !open_locked(error)) return false;
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = fmt::format("cannot write dead-letter file {}: {}", path_.string(),
                          n < 0 ? std::strerror(errno) : "short write");
      // Start the next record on a line of its own, in a file opened anew.
      ::close(fd_);
      fd_ = -1;
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

void DeadLetterFile::reopen() {
  std::lock_guard lock(mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool DeadLetterFile::open_locked(std::string& error) {
  std::error_code ec;
  std::filesystem::path dir = path_.parent_path();
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    error = fmt::format("cannot create dead-letter directory {}: {}", dir.string(), ec.message());
    return false;
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    error =
        fmt::format("cannot open dead-letter file {}: {}", path_.string(), std::strerror(errno));
    return false;
  }
  return true;
}

}  // namespace ingestd::reliability

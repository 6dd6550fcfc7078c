#include "checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include <simdjson.h>

#include "ingestd/json.h"

namespace ingestd::plugins {

namespace {

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string error_text(int err) {
  return std::error_code(err, std::system_category()).message();
}

uint64_t CheckpointTracker::add(uint64_t dev, uint64_t ino, uint64_t end) {
  const uint64_t ticket = next_ticket_++;
  ++unresolved_;
  if (stopped_) {
    first_ticket_ = next_ticket_;  // nothing is kept: the checkpoint cannot move any more
  } else {
    ranges_.push_back({dev, ino, end, State::kPending});
  }
  return ticket;
}

bool CheckpointTracker::resolve(uint64_t ticket, bool ok) {
  if (ticket >= next_ticket_) return false;
  if (unresolved_ > 0) --unresolved_;
  if (stopped_ || ticket < first_ticket_) return false;
  Range& r = ranges_[ticket - first_ticket_];
  if (r.state != State::kPending) return false;
  r.state = ok ? State::kOk : State::kFailed;
  bool moved = false;
  while (!ranges_.empty() && ranges_.front().state != State::kPending) {
    const Range front = ranges_.front();
    if (front.state == State::kFailed) {
      stopped_ = true;
      first_ticket_ = next_ticket_;
      ranges_.clear();
      break;
    }
    committed_ = FilePosition{path_, front.dev, front.ino, front.end};
    moved = true;
    ranges_.pop_front();
    ++first_ticket_;
  }
  return moved;
}

std::optional<FilePosition> read_checkpoint(const std::string& file, std::string& error) {
  error.clear();
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) error = "cannot read " + file + ": " + error_text(errno);
    return std::nullopt;
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) text.append(buf, static_cast<size_t>(n));
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) {
    error = "cannot read " + file + ": " + error_text(read_errno);
    return std::nullopt;
  }
  simdjson::padded_string json(text);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  std::string_view path;
  FilePosition pos;
  simdjson::error_code err = parser.iterate(json).get(doc);
  if (!err) err = doc.get_object().get(obj);
  if (!err) err = obj["path"].get_string().get(path);
  if (!err) err = obj["dev"].get_uint64().get(pos.dev);
  if (!err) err = obj["ino"].get_uint64().get(pos.ino);
  if (!err) err = obj["offset"].get_uint64().get(pos.offset);
  if (err) {
    error = "damaged checkpoint " + file + ": " + simdjson::error_message(err);
    return std::nullopt;
  }
  pos.path = std::string(path);
  return pos;
}

bool write_checkpoint(const std::string& file, const FilePosition& position, std::string& error) {
  std::string data = "{\"path\":";
  json::append_string(data, position.path);
  data += ",\"dev\":" + std::to_string(position.dev) + ",\"ino\":" + std::to_string(position.ino) +
          ",\"offset\":" + std::to_string(position.offset) + "}\n";

  std::string tmp = file + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    error = "cannot create a temporary file beside " + file + ": " + error_text(errno);
    return false;
  }
  const char* step = nullptr;
  if (!write_all(fd, data))
    step = "write";
  else if (::fsync(fd) != 0)
    step = "fsync";
  int err = errno;
  if (::close(fd) != 0 && step == nullptr) {
    step = "close";
    err = errno;
  }
  if (step == nullptr && ::rename(tmp.c_str(), file.c_str()) != 0) {
    step = "rename";
    err = errno;
  }
  if (step != nullptr) {
    ::unlink(tmp.c_str());
    error = "cannot write " + file + " (" + step + "): " + error_text(err);
    return false;
  }
  const std::string dir = std::filesystem::path(file).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    error = "cannot sync the directory of " + file + ": " + error_text(errno);
    if (dfd >= 0) ::close(dfd);
    return false;
  }
  ::close(dfd);
  return true;
}

}  // namespace ingestd::plugins

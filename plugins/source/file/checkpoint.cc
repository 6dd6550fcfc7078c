#include "checkpoint.h"

#include <simdjson.h>

#include "ingestd/json.h"

namespace ingestd::plugins {

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
  std::string text;
  if (read_file(file, text, error) != ReadStatus::kOk) return std::nullopt;
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
  return replace_file(file, data, error);
}

}  // namespace ingestd::plugins

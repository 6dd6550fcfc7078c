#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

#include "ingestd/component.h"

namespace ingestd::reliability {

// The dead-letter file of one component: records that could not be processed or delivered, each
// with the reason, kept for an operator to inspect and replay by hand.
//
// Format: one JSON object per line, {"time": RFC 3339 UTC, "component": name, "reason": text,
// "raw": the record}. Every line is valid JSON whatever the bytes were: a record (or reason)
// that is not valid UTF-8 is stored base64-encoded under "raw_base64" ("reason_base64") instead,
// so the original bytes can always be recovered exactly.
//
// Opening: the directory and the file (mode 0640) are created on the first write. A
// write that cannot be stored (the directory or file cannot be made or opened, a short write,
// ENOSPC) returns false with the cause in `error`, naming the path and the errno of the step that
// failed (EACCES, EROFS, ENOSPC...); the caller counts the record as lost and fails its acks.
// Opening is retried on the next write, so a fixed permission takes effect without a restart.
// reopen() closes the file so that the next write opens it anew (logrotate).
//
// Thread-safe: one mutex around each write (lines from several threads never interleave).
class DeadLetterFile {
 public:
  DeadLetterFile(std::filesystem::path path, std::string component, const Clock& clock);
  ~DeadLetterFile();
  DeadLetterFile(const DeadLetterFile&) = delete;
  DeadLetterFile& operator=(const DeadLetterFile&) = delete;

  bool write(std::string_view raw, std::string_view reason, std::string& error);
  void reopen();
  const std::filesystem::path& path() const { return path_; }

  // The line write() stores for a record, with its '\n' (exposed for tests).
  static std::string line(std::string_view component, int64_t time_ns, std::string_view raw,
                          std::string_view reason);

 private:
  bool open_locked(std::string& error);

  const std::filesystem::path path_;
  const std::string component_;
  const Clock& clock_;
  std::mutex mu_;
  int fd_ = -1;
};

}  // namespace ingestd::reliability

#include "state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace ingestd::plugins {

namespace {

bool write_all(int fd, std::string_view data) {
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

bool replace_file(const std::string& file, std::string_view data, std::string& error) {
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

ReadStatus read_file(const std::string& file, std::string& data, std::string& error) {
  data.clear();
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return ReadStatus::kMissing;
    error = "cannot read " + file + ": " + error_text(errno);
    return ReadStatus::kError;
  }
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) data.append(buf, static_cast<size_t>(n));
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) {
    error = "cannot read " + file + ": " + error_text(read_errno);
    return ReadStatus::kError;
  }
  return ReadStatus::kOk;
}

}  // namespace ingestd::plugins

// source/procfs: reads processes and the host from a procfs tree into events.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "ingestd/component.h"
#include "ingestd/event.h"
#include "procfs_parse.h"

namespace ingestd::plugins {

// What to sample; validated by ProcfsSource's factory.
struct ProcfsSettings {
  std::string root = "/proc";
  bool host = true;
  std::optional<int64_t> pid;
  std::vector<std::string> pid_files;
  std::optional<std::regex> pattern;
  bool match_cmdline = false;  // `pattern` is searched in the command line, not the name
};

// Reads a procfs tree (/proc, or a copy of one) into one event per process and one for the host.
//
// Contract:
// - open() opens `root` and reads the boot time once; select() says which processes to sample
//   now; sample_process() and sample_host() each append at most one event to a batch. The event's
//   fields are documented in plugins/source/procfs/README.md; keys are static strings, string
//   values are copied into the batch's arena. Nothing is appended for a process that is skipped.
// - Failures are counted, never thrown, and each kind is logged once per run (at warn), not every
//   interval: `vanished` (a selected process whose directory is gone before all its files are
//   read: skipped), `unreadable` (a file that cannot be read for another reason than the process
//   having gone, such as EACCES: its fields are left out, or the process is skipped when it is its
//   stat or status), `malformed` (a stat line that does not parse: skipped), `missing` (a `pid` or
//   the pid of a `pid_file` that names no process, or a pid file that cannot be read). Files that
//   a kernel may not have (net/*, pressure/*, <pid>/io without task I/O accounting) leave their
//   fields out without a word.
// - Memory: file contents go to buffers owned by the reader and reused, so a sample allocates
//   nothing but batch memory (and log text the first time a failure is seen).
// - Threading: one thread at a time (the source's).
class ProcfsReader {
 public:
  enum class Outcome { kSampled, kSkipped };

  explicit ProcfsReader(ProcfsSettings settings);
  ~ProcfsReader();
  ProcfsReader(const ProcfsReader&) = delete;
  ProcfsReader& operator=(const ProcfsReader&) = delete;

  // Binds the counters, opens `root` and reads the host name and boot time. False (logged) when
  // `root` cannot be opened as a directory.
  bool open(Context& ctx);
  // Replaces `pids` with the processes to sample now, sorted and without repeats: `pid` and the
  // pids in the `pid_file`s when their /proc directories exist, and every process whose name or
  // command line matches `pattern`.
  void select(Context& ctx, std::vector<int64_t>& pids);
  // Appends the event of process `pid`, sampled at now_ns; kSkipped (counted) when it could not be.
  Outcome sample_process(Context& ctx, int64_t pid, Batch& batch, int64_t now_ns);
  // Appends the host's event, sampled at now_ns, with the fields of every file that could be read.
  void sample_host(Context& ctx, Batch& batch, int64_t now_ns);

 private:
  // Reads `relative` (to root) into buf, at most `limit` bytes; 0 or errno (buf left empty).
  int read_file(const char* relative, std::string& buf, size_t limit);
  // A host file into buf_; false (counted and logged once unless `optional` and absent) when it
  // cannot be read.
  bool read_host_file(Context& ctx, const char* name, bool optional);
  // True when the process `pid` is gone: err (of reading one of its files) is ENOENT or ESRCH
  // and its directory no longer exists.
  bool vanished(int err, int64_t pid);
  bool pid_exists(int64_t pid) const;
  // What err, of reading `what` of process `pid`, means for its sample: true to skip the process
  // (it vanished, or an `essential` file is unreadable), counted and logged once.
  bool skip_after(Context& ctx, int err, int64_t pid, std::string_view what, bool essential);
  void count_unreadable(Context& ctx, std::string_view what, int64_t pid, int err);
  // True the first time this run that the key (formatted into key_, without allocating once it
  // has grown) is seen: what is logged once.
  template <class... Args>
  bool first_time(fmt::format_string<Args...> key, Args&&... args);
  void add_pid_from_file(Context& ctx, const std::string& path, std::vector<int64_t>& pids);
  void add_matching(Context& ctx, std::vector<int64_t>& pids);
  bool matches(Context& ctx, int64_t pid);
  double ticks_to_seconds(int64_t ticks) const {
    return static_cast<double>(ticks) / static_cast<double>(ticks_per_second_);
  }
  // Counts the entries of <pid>/fd; 0 or errno.
  int count_fds(int64_t pid, int64_t& count);

  ProcfsSettings settings_;
  int root_fd_ = -1;
  std::optional<int64_t> boot_time_s_;
  std::string host_name_;
  int64_t ticks_per_second_;

  std::string buf_;  // contents of host files and of files read while selecting
  std::string stat_, status_, io_, cmdline_;
  std::vector<char> dirents_;
  std::set<std::string, std::less<>> logged_;  // keys of the failures already logged
  std::string key_;

  Counter* vanished_ = nullptr;
  Counter* unreadable_ = nullptr;
  Counter* malformed_ = nullptr;
  Counter* missing_ = nullptr;
};

}  // namespace ingestd::plugins

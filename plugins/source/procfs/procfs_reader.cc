#include "procfs_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "shared/state/state_file.h"

namespace ingestd::plugins {

namespace {

constexpr size_t kMaxFileBytes = 4 << 20;  // /proc/stat of a large machine is ~100 KiB
constexpr size_t kMaxCmdlineBytes = 4096;
constexpr size_t kMaxPidFileBytes = 64;
constexpr size_t kDirentBytes = 32 * 1024;

// The files that a kernel may lack (options compiled out, psi=0 at boot), or that a zombie no
// longer answers for (ESRCH while its directory stays): silently left out.
bool absent(int err) {
  return err == ENOENT || err == EOPNOTSUPP || err == ESRCH;
}

constexpr FieldMapping kStatus[] = {
    {"", "Uid", "uid"},
    {"", "VmRSS", "rss_bytes", 1024},
    {"", "Threads", "threads"},
    {"", "voluntary_ctxt_switches", "voluntary_context_switches"},
    {"", "nonvoluntary_ctxt_switches", "involuntary_context_switches"},
};

constexpr FieldMapping kIo[] = {
    {"", "rchar", "io_read_chars"},      {"", "wchar", "io_write_chars"},
    {"", "syscr", "io_read_syscalls"},   {"", "syscw", "io_write_syscalls"},
    {"", "read_bytes", "io_read_bytes"}, {"", "write_bytes", "io_write_bytes"},
};

constexpr FieldMapping kMeminfo[] = {
    {"", "MemTotal", "mem_total_bytes", 1024},         {"", "MemFree", "mem_free_bytes", 1024},
    {"", "MemAvailable", "mem_available_bytes", 1024}, {"", "Buffers", "mem_buffers_bytes", 1024},
    {"", "Cached", "mem_cached_bytes", 1024},          {"", "SwapTotal", "swap_total_bytes", 1024},
    {"", "SwapFree", "swap_free_bytes", 1024},         {"", "Dirty", "mem_dirty_bytes", 1024},
    {"", "Shmem", "mem_shared_bytes", 1024},
};

// /proc/net/snmp and /proc/net/netstat.
constexpr FieldMapping kNet[] = {
    {"Tcp", "ActiveOpens", "tcp_active_opens"},
    {"Tcp", "PassiveOpens", "tcp_passive_opens"},
    {"Tcp", "AttemptFails", "tcp_attempt_fails"},
    {"Tcp", "EstabResets", "tcp_established_resets"},
    {"Tcp", "CurrEstab", "tcp_established"},
    {"Tcp", "InSegs", "tcp_in_segments"},
    {"Tcp", "OutSegs", "tcp_out_segments"},
    {"Tcp", "RetransSegs", "tcp_retransmitted_segments"},
    {"Tcp", "InErrs", "tcp_in_errors"},
    {"Tcp", "OutRsts", "tcp_out_resets"},
    {"Udp", "InDatagrams", "udp_in_datagrams"},
    {"Udp", "NoPorts", "udp_no_ports"},
    {"Udp", "InErrors", "udp_in_errors"},
    {"Udp", "OutDatagrams", "udp_out_datagrams"},
    {"Udp", "RcvbufErrors", "udp_receive_buffer_errors"},
    {"Udp", "SndbufErrors", "udp_send_buffer_errors"},
    {"TcpExt", "SyncookiesSent", "tcp_syncookies_sent"},
    {"TcpExt", "ListenOverflows", "tcp_listen_overflows"},
    {"TcpExt", "ListenDrops", "tcp_listen_drops"},
    {"TcpExt", "TCPTimeouts", "tcp_timeouts"},
    {"TcpExt", "TCPAbortOnTimeout", "tcp_aborts_on_timeout"},
    {"TcpExt", "TCPBacklogDrop", "tcp_backlog_drops"},
    {"TcpExt", "TCPSynRetrans", "tcp_syn_retransmits"},
    {"IpExt", "InOctets", "ip_in_bytes"},
    {"IpExt", "OutOctets", "ip_out_bytes"},
};

constexpr std::string_view kCpuFields[] = {
    "cpu_user_seconds",   "cpu_nice_seconds", "cpu_system_seconds",  "cpu_idle_seconds",
    "cpu_iowait_seconds", "cpu_irq_seconds",  "cpu_softirq_seconds", "cpu_steal_seconds",
};

struct PressureFields {
  const char* file;
  std::string_view names[2][4];  // some, full x avg10, avg60, avg300, total
};
constexpr PressureFields kPressure[] = {
    {"pressure/cpu",
     {{"pressure_cpu_some_avg10", "pressure_cpu_some_avg60", "pressure_cpu_some_avg300",
       "pressure_cpu_some_total_seconds"},
      {"pressure_cpu_full_avg10", "pressure_cpu_full_avg60", "pressure_cpu_full_avg300",
       "pressure_cpu_full_total_seconds"}}},
    {"pressure/memory",
     {{"pressure_memory_some_avg10", "pressure_memory_some_avg60", "pressure_memory_some_avg300",
       "pressure_memory_some_total_seconds"},
      {"pressure_memory_full_avg10", "pressure_memory_full_avg60", "pressure_memory_full_avg300",
       "pressure_memory_full_total_seconds"}}},
    {"pressure/io",
     {{"pressure_io_some_avg10", "pressure_io_some_avg60", "pressure_io_some_avg300",
       "pressure_io_some_total_seconds"},
      {"pressure_io_full_avg10", "pressure_io_full_avg60", "pressure_io_full_avg300",
       "pressure_io_full_total_seconds"}}},
};

// Calls f(name) for each entry of the directory open at `fd` but "." and ".."; 0 or errno.
// getdents64 into the caller's buffer rather than readdir(), which allocates a DIR for every
// directory listed: the source lists one per process per interval.
template <class F>
int list_directory(int fd, std::vector<char>& buffer, F&& f) {
  buffer.resize(kDirentBytes);
  for (;;) {
    const ssize_t n = ::getdents64(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    for (ssize_t off = 0; off < n;) {
      const auto* entry = reinterpret_cast<const struct dirent64*>(buffer.data() + off);
      const std::string_view name(entry->d_name);
      if (name != "." && name != "..") f(name);
      off += entry->d_reclen;
    }
  }
}

bool parse_pid(std::string_view name, int64_t& pid) {
  if (name.empty() || name.find_first_not_of("0123456789") != std::string_view::npos) return false;
  return parse_leading_int(name, pid) && pid > 0;
}

// The command line as `ps` shows it: its NUL-separated words joined by spaces.
void join_words(std::string& cmdline) {
  while (!cmdline.empty() && cmdline.back() == '\0') cmdline.pop_back();
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
}

void trim_newline(std::string& text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
}

// Appends fields to the last event of a batch.
class FieldWriter {
 public:
  FieldWriter(Batch& batch, Event& event) : batch_(batch), event_(event) {}
  void integer(std::string_view key, int64_t v) { add(key, Value::integer(v)); }
  void number(std::string_view key, double v) { add(key, Value::number(v)); }
  void text(std::string_view key, std::string_view v) {
    add(key, Value::string(batch_.copy_unpadded(v)));
  }
  void literal(std::string_view key, std::string_view v) { add(key, Value::string(v)); }
  void mapped(const FieldMapping& m, int64_t v) { integer(m.field, v); }

 private:
  void add(std::string_view key, Value v) { batch_.append_field(event_, key, v); }
  Batch& batch_;
  Event& event_;
};

}  // namespace

ProcfsReader::ProcfsReader(ProcfsSettings settings)
    : settings_(std::move(settings)),
      ticks_per_second_(std::max<int64_t>(::sysconf(_SC_CLK_TCK), 1)) {}

ProcfsReader::~ProcfsReader() {
  if (root_fd_ >= 0) ::close(root_fd_);
}

bool ProcfsReader::open(Context& ctx) {
  vanished_ = &ctx.counter("vanished");
  unreadable_ = &ctx.counter("unreadable");
  malformed_ = &ctx.counter("malformed");
  missing_ = &ctx.counter("missing");
  root_fd_ = ::open(settings_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd_ < 0) {
    ctx.logf(LogLevel::kError, "cannot open root {}: {}", settings_.root, error_text(errno));
    return false;
  }
  if (read_file("sys/kernel/hostname", host_name_, kMaxPidFileBytes * 4) == 0)
    trim_newline(host_name_);
  HostStat stat;
  int err = read_file("stat", buf_, kMaxFileBytes);
  if (err == 0) parse_host_stat(buf_, stat);
  boot_time_s_ = stat.boot_time_s;
  if (!boot_time_s_)
    ctx.logf(LogLevel::kWarn, "no btime in {}/stat{}{}: processes are sampled without start_time",
             settings_.root, err != 0 ? ": " : "", err != 0 ? error_text(err) : "");
  return true;
}

int ProcfsReader::read_file(const char* relative, std::string& buf, size_t limit) {
  buf.clear();
  const int fd = ::openat(root_fd_, relative, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return errno;
  size_t len = 0;
  int err = 0;
  buf.resize(std::min<size_t>(std::max<size_t>(buf.capacity(), 4096), limit));
  for (;;) {
    if (len == buf.size()) {
      if (len >= limit) break;
      buf.resize(std::min(2 * len, limit));
    }
    const ssize_t n = ::read(fd, buf.data() + len, buf.size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    len += static_cast<size_t>(n);
  }
  ::close(fd);
  buf.resize(err == 0 ? len : 0);
  return err;
}

bool ProcfsReader::pid_exists(int64_t pid) const {
  char dir[24];
  *fmt::format_to_n(dir, sizeof dir - 1, "{}", pid).out = '\0';
  struct stat st;
  return ::fstatat(root_fd_, dir, &st, 0) == 0;
}

bool ProcfsReader::vanished(int err, int64_t pid) {
  return (err == ENOENT || err == ESRCH) && !pid_exists(pid);
}

template <class... Args>
bool ProcfsReader::first_time(fmt::format_string<Args...> key, Args&&... args) {
  key_.clear();
  fmt::format_to(std::back_inserter(key_), key, std::forward<Args>(args)...);
  if (logged_.find(key_) != logged_.end()) return false;
  logged_.insert(key_);
  return true;
}

void ProcfsReader::count_unreadable(Context& ctx, std::string_view what, int64_t pid, int err) {
  unreadable_->add();
  if (!first_time("unreadable {} {}", what, err)) return;
  const std::string file = pid > 0 ? fmt::format("{}/{}", pid, what) : std::string(what);
  ctx.logf(LogLevel::kWarn,
           "cannot read {}/{}: {} (such failures are counted in `unreadable` and not logged "
           "again; run the daemon as a user that may read them, or narrow the selection)",
           settings_.root, file, error_text(err));
}

bool ProcfsReader::skip_after(Context& ctx, int err, int64_t pid, std::string_view what,
                              bool essential) {
  if (err == 0) return false;
  if (vanished(err, pid)) {
    vanished_->add();
    if (first_time("vanished"))
      ctx.logf(LogLevel::kInfo,
               "process {} exited while it was read: skipped (such processes are counted in "
               "`vanished` and not logged again)",
               pid);
    return true;
  }
  if (!essential && absent(err)) return false;
  count_unreadable(ctx, what, pid, err);
  return essential;
}

void ProcfsReader::select(Context& ctx, std::vector<int64_t>& pids) {
  pids.clear();
  if (settings_.pid) {
    if (pid_exists(*settings_.pid)) {
      pids.push_back(*settings_.pid);
    } else {
      missing_->add();
      if (first_time("pid {}", *settings_.pid))
        ctx.logf(LogLevel::kWarn, "pid {} is not running (counted in `missing`)", *settings_.pid);
    }
  }
  for (const std::string& file : settings_.pid_files) add_pid_from_file(ctx, file, pids);
  if (settings_.pattern) add_matching(ctx, pids);
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
}

void ProcfsReader::add_pid_from_file(Context& ctx, const std::string& path,
                                     std::vector<int64_t>& pids) {
  // Not below root: the pid file is the host's. Relative paths are the daemon's.
  std::string& text = buf_;
  text.clear();
  int err = 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    err = errno;
  } else {
    text.resize(kMaxPidFileBytes);
    const ssize_t n = ::read(fd, text.data(), text.size());
    err = n < 0 ? errno : 0;
    text.resize(n < 0 ? 0 : static_cast<size_t>(n));
    ::close(fd);
  }
  int64_t pid = 0;
  const bool parsed = err == 0 && parse_leading_int(text, pid) && pid > 0;
  if (parsed && pid_exists(pid)) {
    pids.push_back(pid);
    return;
  }
  missing_->add();
  if (err != 0) {
    if (first_time("pid_file {} {}", path, err))
      ctx.logf(LogLevel::kWarn, "cannot read pid file {}: {} (counted in `missing`)", path,
               error_text(err));
  } else if (!parsed) {
    if (first_time("pid_file {} malformed", path))
      ctx.logf(LogLevel::kWarn, "pid file {} holds no pid (counted in `missing`)", path);
  } else if (first_time("pid_file {} pid {}", path, pid)) {
    ctx.logf(LogLevel::kWarn, "pid {} of pid file {} is not running (counted in `missing`)", pid,
             path);
  }
}

void ProcfsReader::add_matching(Context& ctx, std::vector<int64_t>& pids) {
  const int fd = ::openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    err = list_directory(fd, dirents_, [&](std::string_view name) {
      int64_t pid = 0;
      if (parse_pid(name, pid) && matches(ctx, pid)) pids.push_back(pid);
    });
    ::close(fd);
  }
  if (err != 0) count_unreadable(ctx, ".", 0, err);
}

bool ProcfsReader::matches(Context& ctx, int64_t pid) {
  const char* what = settings_.match_cmdline ? "cmdline" : "comm";
  char path[48];
  *fmt::format_to_n(path, sizeof path - 1, "{}/{}", pid, what).out = '\0';
  const int err = read_file(path, buf_, kMaxCmdlineBytes);
  if (err != 0) {
    // A process that exits while the list is read was never selected: not counted.
    if (!vanished(err, pid)) count_unreadable(ctx, what, pid, err);
    return false;
  }
  if (settings_.match_cmdline)
    join_words(buf_);
  else
    trim_newline(buf_);
  return std::regex_search(buf_.data(), buf_.data() + buf_.size(), *settings_.pattern);
}

int ProcfsReader::count_fds(int64_t pid, int64_t& count) {
  char path[32];
  *fmt::format_to_n(path, sizeof path - 1, "{}/fd", pid).out = '\0';
  const int fd = ::openat(root_fd_, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  count = 0;
  const int err = list_directory(fd, dirents_, [&](std::string_view) { ++count; });
  ::close(fd);
  return err;
}

ProcfsReader::Outcome ProcfsReader::sample_process(Context& ctx, int64_t pid, Batch& batch,
                                                   int64_t now_ns) {
  char path[48];
  auto file = [&](std::string_view name) {
    *fmt::format_to_n(path, sizeof path - 1, "{}/{}", pid, name).out = '\0';
    return path;
  };
  // Every file is read before the event is made, so that a process that vanishes half-way
  // leaves nothing behind.
  PidStat stat;
  int64_t fds = 0;
  if (skip_after(ctx, read_file(file("stat"), stat_, kMaxFileBytes), pid, "stat", true))
    return Outcome::kSkipped;
  if (!parse_pid_stat(stat_, stat)) {
    malformed_->add();
    if (first_time("malformed stat"))
      ctx.logf(LogLevel::kWarn,
               "cannot parse {}/{}/stat: {:?} (such processes are skipped, counted in "
               "`malformed` and not logged again)",
               settings_.root, pid, std::string_view(stat_).substr(0, 200));
    return Outcome::kSkipped;
  }
  if (skip_after(ctx, read_file(file("status"), status_, kMaxFileBytes), pid, "status", true) ||
      skip_after(ctx, read_file(file("cmdline"), cmdline_, kMaxCmdlineBytes), pid, "cmdline",
                 false))
    return Outcome::kSkipped;
  join_words(cmdline_);
  const int fd_err = count_fds(pid, fds);
  if (skip_after(ctx, fd_err, pid, "fd", false) ||
      skip_after(ctx, read_file(file("io"), io_, kMaxFileBytes), pid, "io", false))
    return Outcome::kSkipped;

  Event& event = batch.add({}, now_ns);
  FieldWriter w(batch, event);
  w.integer("time", now_ns / 1'000'000);
  w.literal("kind", "process");
  if (!host_name_.empty()) w.text("host", host_name_);
  w.integer("pid", stat.pid);
  w.integer("ppid", stat.ppid);
  w.text("name", stat.comm);
  w.text("cmdline", cmdline_);
  w.text("state", stat.state);
  if (boot_time_s_)
    w.integer("start_time", *boot_time_s_ * 1000 + stat.start_ticks * 1000 / ticks_per_second_);
  w.number("cpu_user_seconds", ticks_to_seconds(stat.utime_ticks));
  w.number("cpu_system_seconds", ticks_to_seconds(stat.stime_ticks));
  w.integer("minor_faults", stat.minor_faults);
  w.integer("major_faults", stat.major_faults);
  w.integer("virtual_bytes", stat.vsize_bytes);
  for_each_mapped_entry(status_, kStatus,
                        [&](const FieldMapping& m, int64_t v) { w.mapped(m, v); });
  if (fd_err == 0) w.integer("fds", fds);
  for_each_mapped_entry(io_, kIo, [&](const FieldMapping& m, int64_t v) { w.mapped(m, v); });
  return Outcome::kSampled;
}

bool ProcfsReader::read_host_file(Context& ctx, const char* name, bool optional) {
  const int err = read_file(name, buf_, kMaxFileBytes);
  if (err == 0) return true;
  if (!(optional && absent(err))) count_unreadable(ctx, name, 0, err);
  return false;
}

void ProcfsReader::sample_host(Context& ctx, Batch& batch, int64_t now_ns) {
  Event& event = batch.add({}, now_ns);
  FieldWriter w(batch, event);
  auto mapped = [&](const FieldMapping& m, int64_t v) { w.mapped(m, v); };
  w.integer("time", now_ns / 1'000'000);
  w.literal("kind", "host");
  if (!host_name_.empty()) w.text("host", host_name_);

  if (read_host_file(ctx, "stat", false)) {
    HostStat s;
    parse_host_stat(buf_, s);
    if (s.boot_time_s) w.integer("boot_time", *s.boot_time_s * 1000);
    w.integer("cpus", s.cpus);
    if (s.has_cpu)
      for (size_t i = 0; i < s.cpu_ticks.size(); ++i)
        w.number(kCpuFields[i], ticks_to_seconds(s.cpu_ticks[i]));
    const std::pair<std::string_view, const std::optional<int64_t>&> counts[] = {
        {"interrupts", s.interrupts},
        {"context_switches", s.context_switches},
        {"forks", s.forks},
        {"procs_running", s.procs_running},
        {"procs_blocked", s.procs_blocked},
    };
    for (const auto& [key, value] : counts)
      if (value) w.integer(key, *value);
  }
  if (read_host_file(ctx, "meminfo", false)) for_each_mapped_entry(buf_, kMeminfo, mapped);
  if (read_host_file(ctx, "loadavg", false)) {
    LoadAvg load;
    if (parse_loadavg(buf_, load)) {
      w.number("load1", load.load1);
      w.number("load5", load.load5);
      w.number("load15", load.load15);
    } else {
      malformed_->add();
      if (first_time("malformed loadavg"))
        ctx.logf(LogLevel::kWarn, "cannot parse {}/loadavg: {:?} (counted in `malformed`)",
                 settings_.root, std::string_view(buf_).substr(0, 200));
    }
  }
  if (read_host_file(ctx, "net/snmp", true)) for_each_mapped_counter(buf_, kNet, mapped);
  if (read_host_file(ctx, "net/netstat", true)) for_each_mapped_counter(buf_, kNet, mapped);
  for (const PressureFields& resource : kPressure) {
    Pressure p;
    if (!read_host_file(ctx, resource.file, true) || !parse_pressure(buf_, p)) continue;
    const PressureLine* lines[] = {&p.some, &p.full};
    for (size_t k = 0; k < 2; ++k) {
      if (!lines[k]->present) continue;
      w.number(resource.names[k][0], lines[k]->avg10);
      w.number(resource.names[k][1], lines[k]->avg60);
      w.number(resource.names[k][2], lines[k]->avg300);
      w.number(resource.names[k][3], static_cast<double>(lines[k]->total_us) / 1e6);
    }
  }
}

}  // namespace ingestd::plugins

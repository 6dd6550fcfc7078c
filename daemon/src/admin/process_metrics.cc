#include "admin/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ingestd::admin {

namespace {

using runtime::Family;
using runtime::MetricType;

void add(std::vector<Family>& out, const char* name, MetricType type, const char* help,
         double value) {
  Family& f = out.emplace_back();
  f.name = name;
  f.type = type;
  f.help = help;
  f.samples.push_back({{}, value, {}});
}

// The seconds since the epoch at which the system booted (/proc/stat btime).
double boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

void append_process_families(std::vector<Family>& out) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  size_t close = stat.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f;
    for (std::string x; fields >> x;) f.push_back(x);
    // f[0] is field 3 (state): field N is f[N - 3].
    if (f.size() > 21) {
      double utime = std::stod(f[14 - 3]);
      double stime = std::stod(f[15 - 3]);
      double threads = std::stod(f[20 - 3]);
      double start = std::stod(f[22 - 3]);
      double vsize = f.size() > 23 - 3 ? std::stod(f[23 - 3]) : 0;
      double rss = f.size() > 24 - 3 ? std::stod(f[24 - 3]) : 0;
      add(out, "process_cpu_seconds", MetricType::kCounter, "User and system CPU time spent.",
          (utime + stime) / ticks);
      add(out, "process_resident_memory_bytes", MetricType::kGauge, "Resident memory size.",
          rss * page);
      add(out, "process_virtual_memory_bytes", MetricType::kGauge, "Virtual memory size.", vsize);
      add(out, "process_threads", MetricType::kGauge, "Threads of the process.", threads);
      if (double btime = boot_time(); btime > 0)
        add(out, "process_start_time_seconds", MetricType::kGauge,
            "Start time of the process since the Unix epoch.", btime + start / ticks);
    }
  }
  std::error_code ec;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++fds;
  if (!ec)
    add(out, "process_open_fds", MetricType::kGauge, "Open file descriptors.",
        fds > 0 ? fds - 1 : 0);  // less the one that reads the directory
  if (rlimit limit{}; getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    add(out, "process_max_fds", MetricType::kGauge, "The limit of open file descriptors.",
        static_cast<double>(limit.rlim_cur));
}

}  // namespace ingestd::admin

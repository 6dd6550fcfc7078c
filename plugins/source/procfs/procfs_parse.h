// source/procfs: parsers of the /proc text formats, on views of the file contents.
//
// Pure functions: no I/O and no allocation; numbers are read with std::from_chars. Every parser
// accepts what a current kernel writes and reports, instead of guessing, what it cannot read.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace ingestd::plugins {

// The first integer in `text` after blanks (spaces, tabs); false when there is none or it does
// not fit. Text after the number ("kB", more numbers) is ignored.
bool parse_leading_int(std::string_view text, int64_t& out);

// Splits off the first line of `rest` (without its '\n') and returns it; `rest` keeps the others.
std::string_view next_line(std::string_view& rest);

// The fields of /proc/<pid>/stat that the source reports ("1234 (comm) S 1 ..."). `comm` is a view
// into the parsed text: everything between the first '(' and the last ')', so that names with
// spaces and parentheses ("my (odd) job)") come out whole.
struct PidStat {
  int64_t pid = 0;
  std::string_view comm;
  std::string_view state;  // one letter: R, S, D, Z, T, t, X, I
  int64_t ppid = 0;
  int64_t minor_faults = 0;
  int64_t major_faults = 0;
  int64_t utime_ticks = 0;
  int64_t stime_ticks = 0;
  int64_t start_ticks = 0;  // after boot
  int64_t vsize_bytes = 0;
};
// False when the line lacks the parenthesised name or any field up to vsize (the 23rd).
bool parse_pid_stat(std::string_view text, PidStat& out);

// The aggregate lines of /proc/stat.
struct HostStat {
  // user, nice, system, idle, iowait, irq, softirq, steal (guest time is inside user and nice)
  std::array<int64_t, 8> cpu_ticks{};
  bool has_cpu = false;
  int64_t cpus = 0;  // cpuN lines: online CPUs
  std::optional<int64_t> context_switches;
  std::optional<int64_t> boot_time_s;
  std::optional<int64_t> forks;
  std::optional<int64_t> procs_running;
  std::optional<int64_t> procs_blocked;
  std::optional<int64_t> interrupts;
};
void parse_host_stat(std::string_view text, HostStat& out);

struct LoadAvg {
  double load1 = 0;
  double load5 = 0;
  double load15 = 0;
};
bool parse_loadavg(std::string_view text, LoadAvg& out);

// One line of a /proc/pressure/<resource> file.
struct PressureLine {
  bool present = false;
  double avg10 = 0;
  double avg60 = 0;
  double avg300 = 0;
  int64_t total_us = 0;
};
struct Pressure {
  PressureLine some;
  PressureLine full;
};
// False when neither a well-formed `some` nor `full` line is found.
bool parse_pressure(std::string_view text, Pressure& out);

// A value the source reports from a "Key: value" file or a header/value table, under `field`,
// multiplied by `scale` (1024 for "kB").
struct FieldMapping {
  std::string_view section;  // the table's prefix ("Tcp", "TcpExt"); empty for "Key: value" files
  std::string_view key;      // as the kernel names it
  std::string_view field;    // the event's field
  int64_t scale = 1;
};

// The mapping of `key` in `section`, or nullptr.
const FieldMapping* find_mapping(std::span<const FieldMapping> mappings, std::string_view section,
                                 std::string_view key);

// Calls emit(mapping, value) for every line "Key: value" of `text` (status, meminfo, io) whose key
// is in `mappings` with an empty section, in the order of the file. Lines without a number are
// skipped. Returns the number of values emitted.
template <class Emit>
size_t for_each_mapped_entry(std::string_view text, std::span<const FieldMapping> mappings,
                             Emit&& emit) {
  size_t n = 0;
  while (!text.empty()) {
    const std::string_view line = next_line(text);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const FieldMapping* m = find_mapping(mappings, {}, line.substr(0, colon));
    int64_t value = 0;
    if (m != nullptr && parse_leading_int(line.substr(colon + 1), value)) {
      emit(*m, value * m->scale);
      ++n;
    }
  }
  return n;
}

// Calls emit(mapping, value) for every counter of /proc/net/snmp or /proc/net/netstat (pairs of
// lines "Tcp: Name1 Name2 ..." / "Tcp: 1 2 ...") that is in `mappings`, in the order of the file.
// A pair whose lines disagree in prefix or length is skipped. Returns the number emitted.
template <class Emit>
size_t for_each_mapped_counter(std::string_view text, std::span<const FieldMapping> mappings,
                               Emit&& emit) {
  size_t n = 0;
  while (!text.empty()) {
    std::string_view names = next_line(text);
    std::string_view values = next_line(text);
    const size_t colon = names.find(':');
    if (colon == std::string_view::npos ||
        values.substr(0, colon + 1) != names.substr(0, colon + 1))
      continue;
    const std::string_view section = names.substr(0, colon);
    names.remove_prefix(colon + 1);
    values.remove_prefix(colon + 1);
    for (;;) {
      while (!names.empty() && names.front() == ' ') names.remove_prefix(1);
      while (!values.empty() && values.front() == ' ') values.remove_prefix(1);
      if (names.empty() || values.empty()) break;
      const std::string_view name = names.substr(0, names.find(' '));
      const std::string_view value_text = values.substr(0, values.find(' '));
      names.remove_prefix(name.size());
      values.remove_prefix(value_text.size());
      const FieldMapping* m = find_mapping(mappings, section, name);
      int64_t value = 0;
      if (m != nullptr && parse_leading_int(value_text, value)) {
        emit(*m, value * m->scale);
        ++n;
      }
    }
  }
  return n;
}

}  // namespace ingestd::plugins

#include "procfs_parse.h"

#include <charconv>
#include <system_error>

namespace ingestd::plugins {

namespace {

void skip_blanks(std::string_view& text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
}

// Splits off the next blank-separated word of `rest`.
std::string_view next_word(std::string_view& rest) {
  skip_blanks(rest);
  size_t end = 0;
  while (end < rest.size() && rest[end] != ' ' && rest[end] != '\t' && rest[end] != '\n') ++end;
  const std::string_view word = rest.substr(0, end);
  rest.remove_prefix(end);
  return word;
}

// The whole of `text` as a number: "12abc" and "" are refused.
template <class T>
bool parse_exact(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

// One "name=value" word of a pressure line into `line`; false when malformed.
bool parse_pressure_word(std::string_view word, PressureLine& line) {
  const size_t eq = word.find('=');
  if (eq == std::string_view::npos) return false;
  const std::string_view name = word.substr(0, eq);
  const std::string_view value = word.substr(eq + 1);
  if (name == "avg10") return parse_exact(value, line.avg10);
  if (name == "avg60") return parse_exact(value, line.avg60);
  if (name == "avg300") return parse_exact(value, line.avg300);
  if (name == "total") return parse_exact(value, line.total_us);
  return true;  // a newer kernel's addition: not reported
}

}  // namespace

bool parse_leading_int(std::string_view text, int64_t& out) {
  skip_blanks(text);
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr != text.data();
}

std::string_view next_line(std::string_view& rest) {
  const size_t nl = rest.find('\n');
  const std::string_view line = rest.substr(0, nl);
  rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
  return line;
}

const FieldMapping* find_mapping(std::span<const FieldMapping> mappings, std::string_view section,
                                 std::string_view key) {
  for (const FieldMapping& m : mappings)
    if (m.key == key && m.section == section) return &m;
  return nullptr;
}

bool parse_pid_stat(std::string_view text, PidStat& out) {
  // The name may hold anything, spaces and parentheses included, but the kernel writes no ')'
  // after it: the last one ends it.
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return false;
  std::string_view pid_text = text.substr(0, open);
  while (!pid_text.empty() && pid_text.back() == ' ') pid_text.remove_suffix(1);
  if (!parse_exact(pid_text, out.pid)) return false;
  out.comm = text.substr(open + 1, close - open - 1);

  // Fields 3 (state) to 23 (vsize), as numbered in proc(5).
  constexpr size_t kFirst = 3, kLast = 23;
  std::array<std::string_view, kLast - kFirst + 1> f;
  std::string_view rest = text.substr(close + 1);
  for (std::string_view& word : f) {
    word = next_word(rest);
    if (word.empty()) return false;
  }
  auto at = [&](size_t field) { return f[field - kFirst]; };
  out.state = at(3);
  return out.state.size() == 1 && parse_exact(at(4), out.ppid) &&
         parse_exact(at(10), out.minor_faults) && parse_exact(at(12), out.major_faults) &&
         parse_exact(at(14), out.utime_ticks) && parse_exact(at(15), out.stime_ticks) &&
         parse_exact(at(22), out.start_ticks) && parse_exact(at(23), out.vsize_bytes);
}

void parse_host_stat(std::string_view text, HostStat& out) {
  while (!text.empty()) {
    std::string_view line = next_line(text);
    const std::string_view key = next_word(line);
    int64_t value = 0;
    if (key == "cpu") {
      out.has_cpu = true;
      for (int64_t& ticks : out.cpu_ticks)
        if (!parse_exact(next_word(line), ticks)) ticks = 0;  // an old kernel's missing column
    } else if (key.size() > 3 && key.substr(0, 3) == "cpu") {
      ++out.cpus;
    } else if (!parse_leading_int(line, value)) {
      continue;
    } else if (key == "ctxt") {
      out.context_switches = value;
    } else if (key == "btime") {
      out.boot_time_s = value;
    } else if (key == "processes") {
      out.forks = value;
    } else if (key == "procs_running") {
      out.procs_running = value;
    } else if (key == "procs_blocked") {
      out.procs_blocked = value;
    } else if (key == "intr") {
      out.interrupts = value;  // the total; one column per interrupt follows
    }
  }
}

bool parse_loadavg(std::string_view text, LoadAvg& out) {
  return parse_exact(next_word(text), out.load1) && parse_exact(next_word(text), out.load5) &&
         parse_exact(next_word(text), out.load15);
}

bool parse_pressure(std::string_view text, Pressure& out) {
  while (!text.empty()) {
    std::string_view line = next_line(text);
    const std::string_view kind = next_word(line);
    PressureLine parsed;
    if (kind != "some" && kind != "full") continue;
    bool ok = true;
    for (std::string_view word = next_word(line); ok && !word.empty(); word = next_word(line))
      ok = parse_pressure_word(word, parsed);
    if (!ok) continue;
    parsed.present = true;
    (kind == "some" ? out.some : out.full) = parsed;
  }
  return out.some.present || out.full.present;
}

}  // namespace ingestd::plugins

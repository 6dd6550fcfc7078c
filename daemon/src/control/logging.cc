#include "control/logging.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace ingestd::control {

namespace {

constexpr const char* kLoggerName = "ingestd";

LogTarget g_target = LogTarget::kStderr;

std::mutex g_pipeline_mu;
std::string g_pipeline;  // guarded by g_pipeline_mu

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;
    case spdlog::level::info:
      return 6;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::err:
      return 3;
    case spdlog::level::critical:
      return 2;
    default:
      return 6;
  }
}

// The runtime's component prefix, "[sinks.out] ": section and name, or false.
bool component_prefix(std::string_view message, std::string_view& section, std::string_view& name) {
  if (message.size() < 4 || message[0] != '[') return false;
  size_t close = message.find("] ");
  size_t dot = message.find('.');
  if (close == std::string_view::npos || dot == std::string_view::npos || dot > close) return false;
  section = message.substr(1, dot - 1);
  name = message.substr(dot + 1, close - dot - 1);
  return !name.empty();
}

const char* kind_of_section(std::string_view section) {
  if (section == "sources") return "source";
  if (section == "parsers") return "parser";
  if (section == "aggregates") return "aggregate";
  if (section == "sinks") return "sink";
  return nullptr;
}

// Sends each message as one native journal entry. sd_journal_sendv is thread-safe; the mutex of
// base_sink is only spdlog's contract for sinks.
class JournaldSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view message(msg.payload.data(), msg.payload.size());
    std::string pipeline;
    {
      std::lock_guard lock(g_pipeline_mu);
      pipeline = g_pipeline;
    }
    auto fields = detail::journal_fields(syslog_priority(msg.level), message, pipeline,
                                         msg.source.filename, msg.source.line, msg.source.funcname);
    std::vector<iovec> iov;
    iov.reserve(fields.size());
    for (auto& f : fields) iov.push_back({f.data(), f.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0) {
      // The journal is gone (e.g. journald restarting): keep the message on stderr.
      std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
    }
  }
  void flush_() override {}
};

}  // namespace

namespace detail {

std::vector<std::string> journal_fields(int priority, std::string_view message,
                                        std::string_view pipeline, const char* file, int line,
                                        const char* function) {
  std::vector<std::string> fields;
  fields.push_back("MESSAGE=" + std::string(message));
  fields.push_back("PRIORITY=" + std::to_string(priority));
  fields.push_back(std::string("SYSLOG_IDENTIFIER=") + kLoggerName);
  if (!pipeline.empty()) fields.push_back("PIPELINE=" + std::string(pipeline));
  std::string_view section, name;
  if (component_prefix(message, section, name)) {
    if (const char* kind = kind_of_section(section)) {
      fields.push_back("COMPONENT=" + std::string(name));
      fields.push_back(std::string("KIND=") + kind);
    }
  }
  if (file != nullptr && *file != '\0' && line > 0) {
    fields.push_back(std::string("CODE_FILE=") + file);
    fields.push_back("CODE_LINE=" + std::to_string(line));
    if (function != nullptr && *function != '\0')
      fields.push_back(std::string("CODE_FUNC=") + function);
  }
  return fields;
}

}  // namespace detail

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

std::optional<LogTarget> parse_log_target(std::string_view name) {
  if (name == "auto") return LogTarget::kAuto;
  if (name == "stderr") return LogTarget::kStderr;
  if (name == "journald") return LogTarget::kJournald;
  return std::nullopt;
}

void init_logging(LogTarget target) {
  if (target == LogTarget::kAuto)
    target = stderr_is_journal() ? LogTarget::kJournald : LogTarget::kStderr;
  auto previous = spdlog::default_logger();
  auto level = previous ? previous->level() : spdlog::level::info;
  spdlog::sink_ptr sink;
  if (target == LogTarget::kJournald) {
    sink = std::make_shared<JournaldSink>();
  } else {
    auto color = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    // The level name in full and padded, never cut ("warning", not "warni").
    color->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-7l%$ %v");
    sink = color;
  }
  auto logger = std::make_shared<spdlog::logger>(kLoggerName, std::move(sink));
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
  spdlog::set_level(level);
  g_target = target;
}

LogTarget log_target() {
  return g_target;
}

void set_log_pipeline(std::string_view path) {
  std::lock_guard lock(g_pipeline_mu);
  g_pipeline = path;
}

const std::vector<std::string>& log_level_names() {
  static const std::vector<std::string> names = {"trace",   "debug", "info",
                                                 "warning", "warn",  "error"};
  return names;
}

bool set_log_level(std::string_view level) {
  spdlog::level::level_enum parsed;
  if (level == "trace") {
    parsed = spdlog::level::trace;
  } else if (level == "debug") {
    parsed = spdlog::level::debug;
  } else if (level == "info") {
    parsed = spdlog::level::info;
  } else if (level == "warning" || level == "warn") {
    parsed = spdlog::level::warn;
  } else if (level == "error") {
    parsed = spdlog::level::err;
  } else {
    return false;
  }
  spdlog::set_level(parsed);
  return true;
}

std::string log_level() {
  auto view = spdlog::level::to_string_view(spdlog::default_logger_raw()->level());
  return std::string(view.data(), view.size());
}

}  // namespace ingestd::control

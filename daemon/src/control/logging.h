#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ingestd::control {

// Where log lines go.
enum class LogTarget {
  kAuto,      // the journal when stderr is connected to it (JOURNAL_STREAM), else stderr
  kStderr,    // human-readable lines on stderr
  kJournald,  // native journal entries (sd_journal_send), whatever stderr is
};

// Sets up the process-wide logger; may be called again (e.g. once the config's `log.target` is
// known) to switch targets. The level is kept across calls.
//
// stderr lines read `2026-01-02T03:04:05.678 warning [sinks.out] message`, the level name in
// full (trace, debug, info, warning, error, critical).
//
// Journal entries carry MESSAGE (the same text as the stderr line, without time and level),
// PRIORITY, SYSLOG_IDENTIFIER=ingestd, PIPELINE=<config file> once set_log_pipeline() named it,
// CODE_FILE/CODE_LINE/CODE_FUNC when the call site passed
// its location, and, for a message that a component logged, COMPONENT=<name> and
// KIND=source|parser|aggregate|sink. Components are recognised by the prefix the runtime puts on
// their messages, `[<section>.<name>] ` (section: sources, parsers, aggregates, sinks): the
// runtime keeps to that prefix and needs no logging API of its own, and so no systemd header.
void init_logging(LogTarget target = LogTarget::kAuto);
// The pipeline file that journal entries name in PIPELINE= (empty: no such field).
void set_log_pipeline(std::string_view path);
// The target init_logging() chose (kStderr or kJournald, never kAuto).
LogTarget log_target();
// "journald" | "stderr" | "auto" -> the target; std::nullopt for anything else.
std::optional<LogTarget> parse_log_target(std::string_view name);
// True when JOURNAL_STREAM (set by systemd for a service's stdout/stderr) names the device and
// inode of the file open on fd 2.
bool stderr_is_journal();

// Sets the level by name: trace|debug|info|warning|warn|error. Returns false, and leaves the
// level as it is, for any other name.
bool set_log_level(std::string_view level);
// The current level's name: trace|debug|info|warning|error|critical|off.
std::string log_level();
// The names set_log_level() accepts, for help texts and the --log-level check.
const std::vector<std::string>& log_level_names();

namespace detail {
// The fields of one journal entry, "KEY=value" each, in the order sent. `priority` is syslog's
// (3 error, 4 warning, 6 info, 7 debug); `pipeline` may be empty, `file` null and `line` 0 when
// unknown.
std::vector<std::string> journal_fields(int priority, std::string_view message,
                                        std::string_view pipeline, const char* file, int line,
                                        const char* function);
}  // namespace detail

}  // namespace ingestd::control

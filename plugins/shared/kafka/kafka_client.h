// What the Kafka plugins (sink/kafka, source/kafka) share about configuring and running a
// librdkafka client: the bootstrap list, the checked `librdkafka:` passthrough, error texts and
// rate-limited logging of librdkafka's own complaints. Compiled into each plugin that uses it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ingestd/component.h"
#include "ingestd/schema.h"

struct rd_kafka_conf_s;

namespace ingestd::plugins::kafka {

// Client properties in the order they are applied.
using Properties = std::vector<std::pair<std::string, std::string>>;

// A property that an option of the plugin sets, and that option's name.
struct OwnedProperty {
  std::string_view property;
  std::string_view option;
};

// "host:port" entries of the `brokers` option (a list, each entry possibly a comma-separated list
// itself) joined with commas; reports an empty list at `brokers`.
std::string bootstrap_servers(const Options& options, Diagnostics& diag);

inline constexpr size_t kMaxTopicLength = 249;
// The characters Kafka allows in a topic name: a-z A-Z 0-9 . _ -
bool topic_chars_ok(std::string_view name);
// A whole topic name: 1 to kMaxTopicLength of those characters, not "." or "..".
bool topic_name_ok(std::string_view name);

// rd_kafka_resp_err_t as "text (NAME)".
std::string err_text(int err);

// Builds a plugin's client properties: `ours` first (each checked; a bad one is reported at the
// option `option_of(name)` names), then every entry of the `librdkafka:` map, each checked against
// a scratch configuration and reported at `librdkafka.<name>` when it is not a string, is one of
// `owned`, is refused by `extra_check` (which returns the message, or "" to accept), is unknown to
// librdkafka or has a value it refuses. No I/O, no threads.
Properties checked_properties(
    Properties ours, const Options& options, std::span<const OwnedProperty> owned,
    const std::function<std::string(std::string_view name, std::string_view value)>& extra_check,
    Diagnostics& diag);

// True when `name` is among the properties.
bool has_property(const Properties& properties, std::string_view name);

// A new librdkafka configuration holding `properties`; nullptr with `error` set when one is
// refused (they were checked at validation, so only a changed library gets here).
rd_kafka_conf_s* new_conf(const Properties& properties, std::string& error);

// Logs librdkafka's warnings and errors through a component's context, at most one line per
// interval (with how many were left out), since an outage repeats them for every broker and
// reconnect. Thread-safe: librdkafka's threads and the component's call it. The context may be
// detached (set to nullptr) before the client is destroyed; lines are then dropped.
class LimitedLog {
 public:
  explicit LimitedLog(int64_t interval_ns = 5'000'000'000) : interval_ns_(interval_ns) {}

  void attach(Context* ctx) {
    std::lock_guard lock(mu_);
    ctx_ = ctx;
  }
  // A warning, limited.
  void warn(const std::string& message);
  // A librdkafka log line: levels 0-4 (emerg..warning) are limited warnings, the rest debug.
  void librdkafka_log(int level, const char* facility, const char* text);

 private:
  std::mutex mu_;
  Context* ctx_ = nullptr;  // mu_
  int64_t interval_ns_;
  int64_t last_ns_ = 0;      // mu_
  uint64_t suppressed_ = 0;  // mu_
};

}  // namespace ingestd::plugins::kafka

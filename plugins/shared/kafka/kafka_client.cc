#include "kafka_client.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

namespace ingestd::plugins::kafka {

namespace {

int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string bootstrap_servers(const Options& options, Diagnostics& diag) {
  std::vector<std::string> brokers;
  for (const std::string& entry : options.get_list("brokers")) {
    size_t start = 0;
    while ((start = entry.find_first_not_of(", \t", start)) != std::string::npos) {
      size_t end = entry.find_first_of(", \t", start);
      brokers.push_back(entry.substr(start, end - start));
      start = end;
    }
  }
  if (brokers.empty()) diag.error("brokers", "needs at least one host:port");
  return fmt::format("{}", fmt::join(brokers, ","));
}

bool topic_chars_ok(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

bool topic_name_ok(std::string_view name) {
  return !name.empty() && name.size() <= kMaxTopicLength && name != "." && name != ".." &&
         topic_chars_ok(name);
}

std::string err_text(int err) {
  return fmt::format("{} ({})", rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err)),
                     rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
}

Properties checked_properties(
    Properties ours, const Options& options, std::span<const OwnedProperty> owned,
    const std::function<std::string(std::string_view name, std::string_view value)>& extra_check,
    Diagnostics& diag) {
  std::unique_ptr<rd_kafka_conf_t, void (*)(rd_kafka_conf_t*)> scratch(rd_kafka_conf_new(),
                                                                       &rd_kafka_conf_destroy);
  char errstr[512];
  auto option_of = [&](std::string_view name) {
    auto it = std::find_if(owned.begin(), owned.end(),
                           [&](const OwnedProperty& p) { return p.property == name; });
    return it == owned.end() ? std::string() : std::string(it->option);
  };
  for (const auto& [name, value] : ours) {
    if (rd_kafka_conf_set(scratch.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK)
      diag.error(option_of(name), errstr);
  }
  for (const auto& [name, value] : options.get_object("librdkafka").entries) {
    const std::string path = "librdkafka." + name;
    if (value.type != OptionType::kString) {
      diag.error(path, "expected a string value, got a list");
      continue;
    }
    if (std::string option = option_of(name); !option.empty()) {
      diag.error(path,
                 fmt::format("'{}' is set by the option `{}`; use that instead", name, option));
      continue;
    }
    if (std::string refused = extra_check ? extra_check(name, value.s) : std::string();
        !refused.empty()) {
      diag.error(path, refused);
      continue;
    }
    switch (
        rd_kafka_conf_set(scratch.get(), name.c_str(), value.s.c_str(), errstr, sizeof errstr)) {
      case RD_KAFKA_CONF_OK:
        ours.emplace_back(name, value.s);
        break;
      case RD_KAFKA_CONF_UNKNOWN:
        diag.error(path, fmt::format("unknown librdkafka property '{}' (see librdkafka's "
                                     "CONFIGURATION.md for the names)",
                                     name));
        break;
      default:
        diag.error(path, fmt::format("invalid value '{}' for librdkafka property '{}': {}", value.s,
                                     name, errstr));
        break;
    }
  }
  return ours;
}

bool has_property(const Properties& properties, std::string_view name) {
  return std::any_of(properties.begin(), properties.end(),
                     [&](const auto& p) { return p.first == name; });
}

rd_kafka_conf_t* new_conf(const Properties& properties, std::string& error) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      error = fmt::format("{}={}: {}", name, value, errstr);
      rd_kafka_conf_destroy(conf);
      return nullptr;
    }
  }
  return conf;
}

void LimitedLog::warn(const std::string& message) {
  std::lock_guard lock(mu_);
  if (ctx_ == nullptr) return;
  const int64_t now = monotonic_ns();
  if (last_ns_ != 0 && now - last_ns_ < interval_ns_) {
    ++suppressed_;
    return;
  }
  if (suppressed_ > 0)
    ctx_->logf(LogLevel::kWarn, "{} ({} similar lines suppressed)", message, suppressed_);
  else
    ctx_->log(LogLevel::kWarn, message);
  last_ns_ = now;
  suppressed_ = 0;
}

void LimitedLog::librdkafka_log(int level, const char* facility, const char* text) {
  if (level <= 4) {
    warn(fmt::format("librdkafka {}: {}", facility, text));
    return;
  }
  std::lock_guard lock(mu_);
  if (ctx_ != nullptr) ctx_->logf(LogLevel::kDebug, "librdkafka {}: {}", facility, text);
}

}  // namespace ingestd::plugins::kafka

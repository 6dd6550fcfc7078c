// A fixed plugin catalog for the config tests: a few static component descriptors whose
// factories are never called, and helpers to load YAML written in raw string literals.
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "ingestd/plugin.h"

namespace ingestd::config::testing {

inline Component* no_factory(const Options&, Diagnostics&) noexcept {
  return nullptr;
}

inline constexpr OptionSpec kGeneratorOptions[] = {
    {.name = "rate", .type = OptionType::kInt, .default_value = "10", .min = "1", .max = "1000"},
    {.name = "interval", .type = OptionType::kDuration, .default_value = "1s", .min = "1ms"},
    {.name = "lines", .type = OptionType::kStringList, .default_value = "[a, b]"},
    {.name = "format", .type = OptionType::kEnum, .default_value = "json", .choices = "json|text"},
    {.name = "loop", .type = OptionType::kBool, .default_value = "false"},
};

inline constexpr OptionSpec kFileSourceOptions[] = {
    {.name = "path", .type = OptionType::kString, .required = true},
};

inline constexpr OptionSpec kJsonOptions[] = {
    {.name = "strip_prefix", .type = OptionType::kString, .default_value = "\"\""},
    {.name = "on_error",
     .type = OptionType::kEnum,
     .default_value = "drop",
     .choices = "drop|dead_letter|keep"},
    {.name = "fields", .type = OptionType::kStringMap},
};

inline constexpr OptionSpec kWindowChildren[] = {
    {.name = "size", .type = OptionType::kDuration, .required = true, .min = "1ms"},
    {.name = "time",
     .type = OptionType::kEnum,
     .default_value = "processing",
     .choices = "processing|event"},
    {.name = "allowed_lateness", .type = OptionType::kDuration, .default_value = "0"},
    {.name = "late",
     .type = OptionType::kEnum,
     .default_value = "drop",
     .choices = "drop|dead_letter|route"},
};

inline constexpr SideOutputSpec kWindowSideOutputs[] = {
    {.name = "late", .option = "window.late", .value = "route", .doc = "late events"},
};

inline constexpr OptionSpec kWindowOptions[] = {
    {.name = "where", .type = OptionType::kStringMap},
    {.name = "group_by", .type = OptionType::kStringList},
    {.name = "window",
     .type = OptionType::kObject,
     .required = true,
     .children = kWindowChildren,
     .child_count = std::size(kWindowChildren)},
    {.name = "metrics", .type = OptionType::kStringMap, .required = true},
};

inline constexpr OptionSpec kFileSinkOptions[] = {
    {.name = "path", .type = OptionType::kString, .required = true},
    {.name = "rotate_size",
     .type = OptionType::kSize,
     .default_value = "64MiB",
     .min = "1MiB",
     .max = "1GiB"},
    {.name = "rotate_every", .type = OptionType::kDuration},
    {.name = "sample", .type = OptionType::kDouble, .default_value = "1", .min = "0", .max = "1"},
    {.name = "compress", .type = OptionType::kBool, .default_value = "false"},
};

inline constexpr OptionSpec kRetryChildren[] = {
    {.name = "initial", .type = OptionType::kDuration, .default_value = "100ms"},
    {.name = "max", .type = OptionType::kDuration, .default_value = "30s"},
    {.name = "jitter", .type = OptionType::kEnum, .default_value = "full", .choices = "full|none"},
};

inline constexpr OptionSpec kTlsChildren[] = {
    {.name = "cert", .type = OptionType::kString, .required = true},
    {.name = "key", .type = OptionType::kString, .required = true},
};

inline constexpr OptionSpec kStdoutOptions[] = {
    {.name = "format", .type = OptionType::kEnum, .default_value = "json", .choices = "json|text"},
    {.name = "retry",
     .type = OptionType::kObject,
     .children = kRetryChildren,
     .child_count = std::size(kRetryChildren)},
    {.name = "tls",
     .type = OptionType::kObject,
     .children = kTlsChildren,
     .child_count = std::size(kTlsChildren)},
};

// A parser with a list of rules, each item a mapping like a kObject.
inline constexpr OptionSpec kRuleChildren[] = {
    {.name = "name", .type = OptionType::kString},
    {.name = "field", .type = OptionType::kString, .required = true},
    {.name = "action", .type = OptionType::kEnum, .default_value = "drop", .choices = "drop|keep"},
    {.name = "limit", .type = OptionType::kInt, .default_value = "10", .min = "1", .max = "100"},
    {.name = "every", .type = OptionType::kDuration, .min = "1ms"},
    {.name = "retry",
     .type = OptionType::kObject,
     .children = kRetryChildren,
     .child_count = std::size(kRetryChildren)},
};

inline constexpr OptionSpec kFilterOptions[] = {
    {.name = "rules",
     .type = OptionType::kObjectList,
     .children = kRuleChildren,
     .child_count = std::size(kRuleChildren)},
    {.name = "mode", .type = OptionType::kEnum, .default_value = "all", .choices = "all|first"},
};

inline constexpr OptionSpec kBrokenOptions[] = {
    {.name = "limit", .type = OptionType::kSize, .default_value = "lots"},
};

template <size_t N>
constexpr ComponentDescriptor descriptor(Kind kind, const char* type,
                                         const OptionSpec (&options)[N], uint32_t flags = 0) {
  return ComponentDescriptor{sizeof(ComponentDescriptor), kind,  type,       "", options,
                             static_cast<uint32_t>(N),    flags, &no_factory};
}

inline constexpr ComponentDescriptor kGenerator =
    descriptor(Kind::kSource, "generator", kGeneratorOptions);
inline constexpr ComponentDescriptor kFileSource =
    descriptor(Kind::kSource, "file", kFileSourceOptions);
inline constexpr ComponentDescriptor kJson = descriptor(Kind::kParser, "json", kJsonOptions);
inline constexpr ComponentDescriptor kFilter = descriptor(Kind::kParser, "filter", kFilterOptions);
inline constexpr ComponentDescriptor kWindow = [] {
  ComponentDescriptor d = descriptor(Kind::kAggregator, "window", kWindowOptions);
  d.side_outputs = kWindowSideOutputs;
  d.side_output_count = std::size(kWindowSideOutputs);
  return d;
}();
inline constexpr ComponentDescriptor kFileSink =
    descriptor(Kind::kSink, "file", kFileSinkOptions, kSingleWorker);
inline constexpr ComponentDescriptor kStdout = descriptor(Kind::kSink, "stdout", kStdoutOptions);
inline constexpr ComponentDescriptor kBroken = descriptor(Kind::kSink, "broken", kBrokenOptions);
// A sink that writes in order, for the default of `workers`.
inline constexpr ComponentDescriptor kOrdered =
    descriptor(Kind::kSink, "ordered", kStdoutOptions, kOrderedWrites);

class TestCatalog : public Catalog {
 public:
  const ComponentDescriptor* find(Kind kind, std::string_view type) const override {
    for (const ComponentDescriptor* d : kAll)
      if (d->kind == kind && type == d->type) return d;
    return nullptr;
  }
  std::vector<std::string> types(Kind kind) const override {
    std::vector<std::string> out;
    for (const ComponentDescriptor* d : kAll)
      if (d->kind == kind) out.emplace_back(d->type);
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  static constexpr const ComponentDescriptor* kAll[] = {&kGenerator, &kFileSource, &kJson,
                                                        &kFilter,    &kWindow,     &kFileSink,
                                                        &kStdout,    &kBroken,     &kOrdered};
};

// An environment made of a fixed map.
inline Environment fake_env(std::map<std::string, std::string> vars = {}) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// Raw string literals start with a newline after R"( for readability; line 1 is the next line.
inline std::string yaml(const char* text) {
  std::string s = text;
  if (!s.empty() && s.front() == '\n') s.erase(0, 1);
  return s;
}

struct LoadResult {
  std::optional<Pipeline> pipeline;
  std::vector<std::string> errors;  // Error::to_string() of each
};

inline LoadResult load_text(const std::string& text, const Environment& env = fake_env()) {
  TestCatalog catalog;
  std::vector<Error> errors;
  LoadResult result;
  result.pipeline = load("pipeline.yaml", text, catalog, env, errors);
  for (const Error& e : errors) result.errors.push_back(e.to_string());
  return result;
}

}  // namespace ingestd::config::testing

// Component configuration: the schema a plugin declares, and the typed values it receives.
//
// A plugin declares every option once, as data (OptionSpec). The core validates the YAML against
// it, applies defaults and reports all errors as `file:line:col: message` before any factory
// runs; the factory then receives an Options object of typed values, never YAML.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ingestd {

enum class OptionType : uint32_t {
  kBool,
  kInt,
  kDouble,
  kString,
  kDuration,    // "250ms", "1s", "5m", "1h" -> nanoseconds
  kSize,        // "64KiB", "1MiB", "1GB", 4096 -> bytes
  kEnum,        // a string out of `choices`
  kStringList,  // a sequence of strings (a single scalar is taken as a one-element list)
  kStringMap,   // free keys; each value a string or a list of strings
  kObject,      // nested options declared by `children`
  kObjectList,  // a sequence of mappings, each validated against `children` like a kObject
                // (added last: the values above are part of the plugin ABI)
};

// One option. Written with designated initializers:
//   {.name = "path", .type = OptionType::kString, .required = true, .doc = "File to write."}
struct OptionSpec {
  const char* name = nullptr;
  OptionType type = OptionType::kString;
  const char* default_value = nullptr;  // in YAML syntax, parsed like a configured value
  bool required = false;
  const char* min = nullptr;      // inclusive bounds for kInt, kDouble, kDuration, kSize
  const char* max = nullptr;      //   written in the option's own syntax ("1MiB", "10ms")
  const char* choices = nullptr;  // kEnum: "a|b|c"
  const char* doc = "";
  const OptionSpec* children =
      nullptr;  // kObject, kObjectList: .children = kWindow, .child_count = std::size(kWindow)
  uint32_t child_count = 0;
};

// A validated value. Objects (the options of a component, or a kObject option) and string maps
// keep their entries in declaration/YAML order. A kObjectList keeps its items in `entries` as
// ("0", item), ("1", item), ...: each key is the item's index in the YAML list, which is also how
// Diagnostics name an item's option ("sanitize.1.match"), and each item is a kObject. (When the
// factory runs after a failed validation, an item that could not be read is left out and the
// others keep their index.)
struct OptionValue {
  OptionValue() = default;
  OptionValue(const OptionValue&);
  OptionValue(OptionValue&&) noexcept;
  OptionValue& operator=(const OptionValue&);
  OptionValue& operator=(OptionValue&&) noexcept;
  ~OptionValue();

  OptionType type = OptionType::kObject;
  bool b = false;
  int64_t i = 0;                  // kInt; kDuration in ns; kSize in bytes
  double d = 0;                   // kDouble
  std::string s;                  // kString, kEnum
  std::vector<std::string> list;  // kStringList; kStringMap entry values
  std::vector<std::pair<std::string, OptionValue>> entries;  // kObject, kStringMap, kObjectList

  const OptionValue* find(std::string_view name) const {
    for (const auto& [k, v] : entries)
      if (k == name) return &v;
    return nullptr;
  }
  bool has(std::string_view name) const { return find(name) != nullptr; }

  // Getters for the options of an object. A missing option (optional, no default) yields the
  // fallback; the core has already checked types, so the getters do not.
  bool get_bool(std::string_view n, bool fallback = false) const {
    auto* v = find(n);
    return v ? v->b : fallback;
  }
  int64_t get_int(std::string_view n, int64_t fallback = 0) const {
    auto* v = find(n);
    return v ? v->i : fallback;
  }
  double get_double(std::string_view n, double fallback = 0) const {
    auto* v = find(n);
    return v ? v->d : fallback;
  }
  std::string get_string(std::string_view n, std::string_view fallback = {}) const {
    auto* v = find(n);
    return v ? v->s : std::string(fallback);
  }
  int64_t get_duration_ns(std::string_view n, int64_t fallback = 0) const {
    return get_int(n, fallback);
  }
  uint64_t get_size(std::string_view n, uint64_t fallback = 0) const {
    auto* v = find(n);
    return v ? static_cast<uint64_t>(v->i) : fallback;
  }
  std::vector<std::string> get_list(std::string_view n) const {
    auto* v = find(n);
    return v ? v->list : std::vector<std::string>{};
  }
  // kObject or kStringMap; an empty object when missing.
  const OptionValue& get_object(std::string_view n) const {
    static const OptionValue kEmpty;
    auto* v = find(n);
    return v ? *v : kEmpty;
  }
  // kObjectList: its (index, item) pairs in list order; none when missing.
  //   for (const auto& [index, rule] : options.get_object_list("sanitize")) ...
  const std::vector<std::pair<std::string, OptionValue>>& get_object_list(
      std::string_view n) const {
    return get_object(n).entries;
  }
};
// Defaulted once OptionValue is complete: clang 14 with libstdc++ 12 instantiates the destructor
// of `entries` (a vector of pairs that hold an OptionValue) too early when they are implicit.
inline OptionValue::OptionValue(const OptionValue&) = default;
inline OptionValue::OptionValue(OptionValue&&) noexcept = default;
inline OptionValue& OptionValue::operator=(const OptionValue&) = default;
inline OptionValue& OptionValue::operator=(OptionValue&&) noexcept = default;
inline OptionValue::~OptionValue() = default;
using Options = OptionValue;

// Where a factory reports what the schema cannot express ("unknown metric 'avg(x'").
// `option` is a dotted path below the component ("metrics.sps"); the core turns it into the
// YAML position of that option, or of the component when the path is empty or unknown.
class Diagnostics {
 public:
  virtual ~Diagnostics() = default;
  virtual void error(std::string_view option, std::string_view message) = 0;
};

}  // namespace ingestd

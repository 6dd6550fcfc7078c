#include "sanitize.h"

#include <re2/re2.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include "ingestd/json.h"

namespace ingestd::plugins {

namespace {

enum class Test : uint8_t { kAny, kEquals, kPrefix, kContains, kMatch };

constexpr std::array<std::string_view, 7> kKeys = {"field", "equals", "prefix", "contains",
                                                   "match", "action", "value"};

bool valid_rule_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  return true;
}

// Splits `key=value key="value with spaces"` into pairs. Inside double quotes, \" is a quote and
// \\ a backslash; any other backslash stays as written, so that regular expressions such as
// ^\d+$ need no doubling.
bool split_settings(std::string_view text, std::vector<std::pair<std::string, std::string>>& out,
                    std::string& error) {
  size_t i = 0;
  auto space = [&](size_t at) { return text[at] == ' ' || text[at] == '\t'; };
  while (true) {
    while (i < text.size() && space(i)) ++i;
    if (i == text.size()) return true;
    size_t start = i;
    while (i < text.size() && text[i] != '=' && !space(i)) ++i;
    std::string key(text.substr(start, i - start));
    if (i == text.size() || text[i] != '=') {
      error = fmt::format("expected key=value, got '{}'", key);
      return false;
    }
    ++i;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char c = text[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < text.size() && (text[i] == '"' || text[i] == '\\')) c = text[i++];
        value += c;
      }
      if (!closed) {
        error = fmt::format("{}: the closing double quote is missing", key);
        return false;
      }
      if (i < text.size() && !space(i)) {
        error = fmt::format("{}: expected a space after the closing double quote", key);
        return false;
      }
    } else {
      start = i;
      while (i < text.size() && !space(i)) ++i;
      value = text.substr(start, i - start);
    }
    out.emplace_back(std::move(key), std::move(value));
  }
}

std::string quoted(std::string_view s) {
  std::string out;
  json::append_string(out, s);
  return out;
}

}  // namespace

struct Sanitizer::Rule {
  std::string name;
  std::string field;
  Test test = Test::kAny;
  std::string pattern;
  std::unique_ptr<re2::RE2> regex;
  Action action = Action::kReject;
  std::string value;
  Counter* counter = nullptr;
  uint64_t pending = 0;
};

Sanitizer::Sanitizer(const OptionValue& rules, Diagnostics& diag) {
  rules_.reserve(rules.entries.size());
  for (const auto& [name, settings] : rules.entries) {
    std::string option = fmt::format("sanitize.{}", name);
    auto error = [&](std::string_view message) { diag.error(option, message); };
    if (!valid_rule_name(name))
      error("a rule name (it names the rule's counter) may hold only letters, digits, _ and -");

    std::vector<std::pair<std::string, std::string>> pairs;
    if (settings.type == OptionType::kStringList) {
      for (const std::string& item : settings.list) {
        size_t eq = item.find('=');
        if (eq == std::string::npos)
          error(fmt::format("expected key=value, got '{}'", item));
        else
          pairs.emplace_back(item.substr(0, eq), item.substr(eq + 1));
      }
    } else {
      std::string message;
      if (!split_settings(settings.s, pairs, message)) {
        error(message);  // what follows it cannot be read: nothing more to say about this rule
        continue;
      }
    }

    Rule rule;
    rule.name = name;
    bool has_field = false, has_action = false, has_value = false, ok = true;
    std::vector<std::string_view> seen;
    for (const auto& [key, value] : pairs) {
      if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
        error(fmt::format("unknown setting '{}' (expected {})", key, fmt::join(kKeys, ", ")));
        ok = false;
        continue;
      }
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        error(fmt::format("'{}' is given twice", key));
        ok = false;
        continue;
      }
      seen.push_back(*std::find(kKeys.begin(), kKeys.end(), key));
      if (key == "field") {
        has_field = true;
        rule.field = value;
        if (value.empty()) {
          error("field: expected a field's dotted path, got an empty one");
          ok = false;
        }
      } else if (key == "action") {
        has_action = true;
        if (value == "reject") {
          rule.action = Action::kReject;
        } else if (value == "strip") {
          rule.action = Action::kStrip;
        } else if (value == "replace") {
          rule.action = Action::kReplace;
        } else {
          error(fmt::format("action: expected one of reject, strip, replace, got '{}'", value));
          ok = false;
        }
      } else if (key == "value") {
        has_value = true;
        rule.value = value;
      } else {
        if (rule.test != Test::kAny) {
          error("give at most one of equals, prefix, contains, match");
          ok = false;
          continue;
        }
        rule.test = key == "equals"     ? Test::kEquals
                    : key == "prefix"   ? Test::kPrefix
                    : key == "contains" ? Test::kContains
                                        : Test::kMatch;
        rule.pattern = value;
      }
    }
    if (!has_field) {
      error("missing 'field=' (the field's dotted path)");
      ok = false;
    }
    if (!has_action) {
      error("missing 'action=' (reject, strip or replace)");
      ok = false;
    }
    if (has_action && rule.action == Action::kReplace && !has_value) {
      error("action=replace needs 'value=' (the replacement)");
      ok = false;
    }
    if (has_value && rule.action != Action::kReplace) {
      error("'value=' is only for action=replace");
      ok = false;
    }
    if (rule.test == Test::kMatch) {
      RE2::Options re_options(RE2::Quiet);
      rule.regex = std::make_unique<re2::RE2>(rule.pattern, re_options);
      if (!rule.regex->ok()) {
        error(fmt::format("match: invalid regular expression {}: {}", quoted(rule.pattern),
                          rule.regex->error()));
        ok = false;
      }
    }
    if (ok) rules_.push_back(std::move(rule));
  }
}

Sanitizer::~Sanitizer() = default;

std::vector<std::string_view> Sanitizer::fields() const {
  std::vector<std::string_view> out;
  for (const Rule& rule : rules_) out.emplace_back(rule.field);
  return out;
}

void Sanitizer::bind_counters(Context& ctx) {
  for (Rule& rule : rules_) {
    const char* done = rule.action == Action::kReject  ? "rejected"
                       : rule.action == Action::kStrip ? "stripped"
                                                       : "replaced";
    rule.counter = &ctx.counter(fmt::format("sanitize.{}.{}", rule.name, done));
  }
}

bool Sanitizer::matches(const Rule& rule, const Value& value) const {
  if (rule.test == Test::kAny) return true;
  if (value.type != Value::Type::kString) return false;
  switch (rule.test) {
    case Test::kEquals:
      return value.s == rule.pattern;
    case Test::kPrefix:
      return value.s.starts_with(rule.pattern);
    case Test::kContains:
      return value.s.find(rule.pattern) != std::string_view::npos;
    case Test::kMatch:
      return RE2::PartialMatch(re2::StringPiece(value.s.data(), value.s.size()), *rule.regex);
    case Test::kAny:
      break;
  }
  return true;
}

Sanitizer::Outcome Sanitizer::apply(Batch& batch, Event& event) {
  Outcome outcome = Outcome::kKept;
  for (Rule& rule : rules_) {
    const Value* value = batch.find(event, rule.field);
    if (!value || !matches(rule, *value)) continue;
    ++rule.pending;
    switch (rule.action) {
      case Action::kReject:
        rejected_by_ = &rule;
        return Outcome::kRejected;
      case Action::kStrip:
        rewrite(batch, event, rule, {});
        break;
      case Action::kReplace:
        rewrite(batch, event, rule, batch.copy(rule.value));
        break;
    }
    outcome = Outcome::kChanged;
  }
  return outcome;
}

// Appends the event's fields again behind the batch's others, leaving out (strip) or changing
// (replace) those of the rule's key; the old ones stay unused in the batch's field storage.
void Sanitizer::rewrite(Batch& batch, Event& event, const Rule& rule,
                        std::string_view replacement) {
  Event before = event;
  event.field_count = 0;
  for (uint32_t k = 0; k < before.field_count; ++k) {
    Field f = batch.fields(before)[k];  // by value: appending may move the storage
    if (f.key == rule.field) {
      if (rule.action == Action::kStrip) continue;
      f.value = Value::string(replacement);
    }
    batch.append_field(event, f.key, f.value);
  }
}

void Sanitizer::encode_raw(Batch& batch, Event& event) {
  scratch_.clear();
  json::append_fields(scratch_, batch, event);
  event.raw = batch.copy(scratch_);
}

std::string Sanitizer::reject_reason() const {
  if (!rejected_by_) return {};
  const Rule& r = *rejected_by_;
  static constexpr std::array<const char*, 5> kTestNames = {"", "equals", "prefix", "contains",
                                                            "match"};
  if (r.test == Test::kAny)
    return fmt::format("rejected by sanitize rule '{}': field {} is present", r.name, r.field);
  return fmt::format("rejected by sanitize rule '{}': field {} {} {}", r.name, r.field,
                     kTestNames[static_cast<size_t>(r.test)], quoted(r.pattern));
}

void Sanitizer::flush() {
  for (Rule& rule : rules_) {
    if (rule.pending && rule.counter) rule.counter->add(rule.pending);
    rule.pending = 0;
  }
}

}  // namespace ingestd::plugins

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

// The options naming a test, in the order of Test's values after kAny.
constexpr std::array<std::string_view, 4> kTests = {"equals", "prefix", "contains", "match"};

bool valid_rule_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  return true;
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
  std::vector<std::pair<std::string, std::string>> names;  // (name, index of the rule having it)
  for (const auto& item : rules.entries) {
    const std::string& index = item.first;  // not a structured binding: the lambda captures it
    const OptionValue& settings = item.second;
    bool ok = true;
    auto error = [&](std::string_view option, std::string_view message) {
      diag.error(option.empty() ? fmt::format("sanitize.{}", index)
                                : fmt::format("sanitize.{}.{}", index, option),
                 message);
      ok = false;
    };

    Rule rule;
    const bool named = settings.has("name");
    rule.name = named ? settings.get_string("name") : index;
    if (!valid_rule_name(rule.name))
      error("name",
            "a rule name (it names the rule's counters) may hold only letters, digits, _ "
            "and -");
    auto taken = std::find_if(names.begin(), names.end(),
                              [&](const auto& n) { return n.first == rule.name; });
    if (taken != names.end() && named) {
      error("name", fmt::format("rule name '{}' is already used by sanitize.{} (a rule's name "
                                "names its counters: it must be unique)",
                                rule.name, taken->second));
    } else if (taken != names.end()) {
      error("", fmt::format("this rule is named by its index, '{}', which sanitize.{} already "
                            "uses as its name: give one of them another name",
                            rule.name, taken->second));
    } else {
      names.emplace_back(rule.name, index);
    }

    rule.field = settings.get_string("field");
    if (rule.field.empty()) error("field", "expected a field's dotted path, got an empty one");

    for (size_t t = 0; t < kTests.size(); ++t) {
      const OptionValue* pattern = settings.find(kTests[t]);
      if (!pattern) continue;
      if (rule.test != Test::kAny) {
        error(kTests[t], fmt::format("give at most one of equals, prefix, contains, match (the "
                                     "rule also has '{}')",
                                     kTests[static_cast<size_t>(rule.test) - 1]));
        continue;
      }
      rule.test = static_cast<Test>(t + 1);
      rule.pattern = pattern->s;
    }

    const std::string action = settings.get_string("action");
    rule.action = action == "strip"     ? Action::kStrip
                  : action == "replace" ? Action::kReplace
                                        : Action::kReject;
    const OptionValue* value = settings.find("value");
    if (rule.action == Action::kReplace && !value)
      error("action", "replace needs 'value' (the replacement)");
    if (value && rule.action != Action::kReplace) error("value", "only for action: replace");
    if (value) rule.value = value->s;

    if (rule.test == Test::kMatch) {
      RE2::Options re_options(RE2::Quiet);
      rule.regex = std::make_unique<re2::RE2>(rule.pattern, re_options);
      if (!rule.regex->ok())
        error("match", fmt::format("invalid regular expression {}: {}", quoted(rule.pattern),
                                   rule.regex->error()));
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
        rewrite(batch, event, rule, batch.copy_unpadded(rule.value));
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
  if (r.test == Test::kAny)
    return fmt::format("rejected by sanitize rule '{}': field {} is present", r.name, r.field);
  return fmt::format("rejected by sanitize rule '{}': field {} {} {}", r.name, r.field,
                     kTests[static_cast<size_t>(r.test) - 1], quoted(r.pattern));
}

void Sanitizer::flush() {
  for (Rule& rule : rules_) {
    if (rule.pending && rule.counter) rule.counter->add(rule.pending);
    rule.pending = 0;
  }
}

}  // namespace ingestd::plugins

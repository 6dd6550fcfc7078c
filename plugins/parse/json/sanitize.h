// parse/json's `sanitize` rules: reject records, or strip or replace fields, whose values match.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ingestd/component.h"
#include "ingestd/event.h"
#include "ingestd/schema.h"

namespace re2 {
class RE2;
}

namespace ingestd::plugins {

// The options of one `sanitize` rule: the items of the parser's kObjectList option.
inline constexpr OptionSpec kSanitizeRuleOptions[] = {
    {.name = "name",
     .type = OptionType::kString,
     .doc = "Names the rule's counters (`sanitize.<name>.rejected`): letters, digits, `_` and `-`, "
            "unique among the rules. Default: the rule's index in the list (0, 1, ...)."},
    {.name = "field",
     .type = OptionType::kString,
     .required = true,
     .doc = "The field's dotted path, as the parser flattened it (`geo.country`, up to "
            "max_depth). Values inside arrays, or objects kept raw below max_depth, are not "
            "fields. A record without the field is left alone by the rule."},
    {.name = "equals",
     .type = OptionType::kString,
     .doc = "Matches a string value equal to this text. At most one of equals, prefix, contains "
            "and match; with none the rule matches any value."},
    {.name = "prefix",
     .type = OptionType::kString,
     .doc = "Matches a string value beginning with this text."},
    {.name = "contains",
     .type = OptionType::kString,
     .doc = "Matches a string value containing this text."},
    {.name = "match",
     .type = OptionType::kString,
     .doc = "Matches a string value with this RE2 regular expression, unanchored (`^` anchors "
            "it). A test matches strings only: numbers, bools, null, arrays and objects never "
            "match."},
    {.name = "action",
     .type = OptionType::kEnum,
     .required = true,
     .choices = "reject|strip|replace",
     .doc = "`reject` the record, `strip` the field, or `replace` its value with `value`."},
    {.name = "value",
     .type = OptionType::kString,
     .doc = "With `action: replace` only: the new value, always a string."},
};

// The rules of one parser instance, compiled from the `sanitize` option: a list of mappings (see
// kSanitizeRuleOptions), in the order they apply:
//
//   - name: busted_title
//     field: title
//     prefix: "busted data"
//     action: reject
//
// - field: the field's dotted path, as the parser flattened it (`a.b` for {"a":{"b":..}}, up to
//   max_depth). A value inside an array or a raw object is not a field.
// - the test, at most one: equals, prefix, contains (literal text) or match (an RE2 regular
//   expression, unanchored: `^` anchors it). A test matches string values only; a number, bool,
//   null, array or object never matches. Without a test the rule matches any value.
// - action: reject (the record), strip (the field) or replace (its value, with `value`, which
//   becomes a string).
// - name: names the counters; the rule's index in the list when not given. Names are unique.
// A rule whose field is missing does nothing. It tests the value lookups see (the first of a
// repeated key); strip and replace act on every field of that key.
//
// apply() runs the rules in order on one event: a rejecting rule ends the walk; later rules see
// what earlier ones stripped or replaced. Matches are counted per rule and reach the counters
// `sanitize.<name>.rejected|stripped|replaced` when flush() is called (once per batch).
//
// The core has checked each rule against kSanitizeRuleOptions; what the schema cannot express (two
// tests, `value` without replace, an invalid regular expression, a bad or repeated name) is
// reported to Diagnostics as the option `sanitize.<index>.<option>` (the core gives it that
// option's file position), all of it. Memory: apply() allocates nothing unless a rule strips or
// replaces (the changed event's fields are rewritten behind the batch's others, and its raw
// re-encoded into the arena). Threading: one instance per parser, one thread at a time.
class Sanitizer {
 public:
  enum class Outcome { kKept, kChanged, kRejected };

  // `rules`: the value of the kObjectList option `sanitize`.
  Sanitizer(const OptionValue& rules, Diagnostics& diag);
  ~Sanitizer();
  Sanitizer(const Sanitizer&) = delete;
  Sanitizer& operator=(const Sanitizer&) = delete;

  bool empty() const { return rules_.empty(); }
  // The dotted paths the rules test, in rule order.
  std::vector<std::string_view> fields() const;
  void bind_counters(Context& ctx);

  // Applies the rules to `event`, the last event of `batch` that fields were added to. With
  // kChanged the event's fields were rewritten: re-encode its raw with encode_raw().
  Outcome apply(Batch& batch, Event& event);
  // Sets the event's raw bytes to its fields as one flat JSON object, in the arena.
  void encode_raw(Batch& batch, Event& event);
  // After apply() returned kRejected: why, for a dead letter.
  std::string reject_reason() const;
  // Adds the counts gathered since the last flush() to the counters.
  void flush();

 private:
  enum class Action : uint8_t { kReject, kStrip, kReplace };
  struct Rule;

  bool matches(const Rule& rule, const Value& value) const;
  static void rewrite(Batch& batch, Event& event, const Rule& rule, std::string_view replacement);

  std::vector<Rule> rules_;
  const Rule* rejected_by_ = nullptr;
  std::string scratch_;  // encode_raw()'s buffer, reused
};

}  // namespace ingestd::plugins

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

// The rules of one parser instance, compiled from the `sanitize` option: a mapping of rule names
// to settings, in the order they apply. Each rule is `key=value` settings, written as one string
// (values with spaces in double quotes) or as a list of `key=value` strings:
//
//   busted_title: field=title prefix="busted data" action=reject
//   uk:           [field=geo.country, equals=United Kingdom, action=replace, value=UK]
//
// - field (required): the field's dotted path, as the parser flattened it (`a.b` for
//   {"a":{"b":..}}, up to max_depth). A value inside an array or a raw object is not a field.
// - the test, at most one: equals, prefix, contains (literal text) or match (an RE2 regular
//   expression, unanchored: `^` anchors it). A test matches string values only; a number, bool,
//   null, array or object never matches. Without a test the rule matches any value.
// - action (required): reject (the record), strip (the field) or replace (its value, with
//   `value=`, which becomes a string).
// A rule whose field is missing does nothing. It tests the value lookups see (the first of a
// repeated key); strip and replace act on every field of that key.
//
// apply() runs the rules in order on one event: a rejecting rule ends the walk; later rules see
// what earlier ones stripped or replaced. Matches are counted per rule and reach the counters
// `sanitize.<rule>.rejected|stripped|replaced` when flush() is called (once per batch).
//
// Errors in the settings are reported to Diagnostics as the option `sanitize.<rule>` (the core
// gives them the rule's file position), all of them. Memory: apply() allocates nothing unless a
// rule strips or replaces (the changed event's fields are rewritten behind the batch's others,
// and its raw re-encoded into the arena). Threading: one instance per parser, one thread at a time.
class Sanitizer {
 public:
  enum class Outcome { kKept, kChanged, kRejected };

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

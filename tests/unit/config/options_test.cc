// options_from_yaml(): one component's options against its schema, without core keys or graph.
#include <gtest/gtest.h>

#include "test_catalog.h"

namespace ingestd::config {
namespace {

using testing::kBroken;
using testing::kFileSink;
using testing::kFilter;
using testing::kGenerator;
using testing::kJson;
using testing::kStdout;
using testing::kWindow;
using testing::yaml;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

struct Parsed {
  std::optional<Options> options;
  std::vector<std::string> errors;
};

Parsed parse(const ComponentDescriptor& descriptor, const std::string& text) {
  std::vector<Error> errors;
  Parsed out;
  out.options = options_from_yaml(descriptor, text, errors);
  for (const Error& e : errors) out.errors.push_back(e.to_string());
  return out;
}

std::vector<std::string> errors_of(const ComponentDescriptor& descriptor, const std::string& text) {
  Parsed p = parse(descriptor, text);
  EXPECT_FALSE(p.options.has_value());
  return p.errors;
}

Options options_of(const ComponentDescriptor& descriptor, const std::string& text) {
  Parsed p = parse(descriptor, text);
  EXPECT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  return p.options.value_or(Options{});
}

std::vector<std::string> keys(const OptionValue& object) {
  std::vector<std::string> out;
  for (const auto& [k, v] : object.entries) out.push_back(k);
  return out;
}

TEST(OptionsFromYaml, AppliesDefaultsInDeclarationOrder) {
  Options o = options_of(kGenerator, "");
  EXPECT_EQ(keys(o), (std::vector<std::string>{"rate", "interval", "lines", "format", "loop"}));
  EXPECT_EQ(o.get_int("rate"), 10);
  EXPECT_EQ(o.get_duration_ns("interval"), kSec);
  EXPECT_EQ(o.get_list("lines"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o.get_string("format"), "json");
  EXPECT_EQ(o.find("loop")->type, OptionType::kBool);
  EXPECT_FALSE(o.get_bool("loop", true));

  Options sink = options_of(kFileSink, "path: /tmp/out");
  EXPECT_EQ(sink.get_size("rotate_size"), 64u << 20);
  EXPECT_EQ(sink.get_double("sample"), 1.0);
  EXPECT_FALSE(sink.has("rotate_every"));
  EXPECT_EQ(options_of(kJson, "").get_string("strip_prefix", "unset"), "");
}

TEST(OptionsFromYaml, ConvertsEachScalarType) {
  Options o = options_of(kGenerator, yaml(R"(
rate: 20
interval: 250ms
lines: only
format: text
loop: true
)"));
  EXPECT_EQ(o.get_int("rate"), 20);
  EXPECT_EQ(o.find("rate")->type, OptionType::kInt);
  EXPECT_EQ(o.get_duration_ns("interval"), 250 * kMs);
  EXPECT_EQ(o.find("interval")->type, OptionType::kDuration);
  EXPECT_EQ(o.get_list("lines"), (std::vector<std::string>{"only"}));
  EXPECT_EQ(o.get_string("format"), "text");
  EXPECT_EQ(o.find("format")->type, OptionType::kEnum);
  EXPECT_TRUE(o.get_bool("loop"));

  Options sink =
      options_of(kFileSink, "{path: '123', rotate_size: 2MiB, sample: 0.25, rotate_every: 1h}");
  EXPECT_EQ(sink.get_string("path"), "123");
  EXPECT_EQ(sink.get_size("rotate_size"), 2u << 20);
  EXPECT_EQ(sink.get_double("sample"), 0.25);
  EXPECT_EQ(sink.get_duration_ns("rotate_every"), 3600 * kSec);
}

TEST(OptionsFromYaml, UnknownOptionSuggestsTheClosestName) {
  EXPECT_EQ(
      errors_of(kFileSink, yaml(R"(
path: /tmp/x
pathh: /tmp/y
)")),
      (std::vector<std::string>{"<options>:2:1: unknown option 'pathh' (did you mean 'path'?)"}));
  EXPECT_EQ(errors_of(kFileSink, "path: x\nbrokers: y\n"),
            (std::vector<std::string>{"<options>:2:1: unknown option 'brokers'"}));
}

TEST(OptionsFromYaml, MissingRequiredOption) {
  EXPECT_EQ(errors_of(kFileSink, "compress: true\n"),
            (std::vector<std::string>{"<options>:1:1: missing required option 'path'"}));
}

TEST(OptionsFromYaml, BoundsAreInclusiveAndWrittenInTheOptionSyntax) {
  Options low = options_of(kFileSink, "{path: x, rotate_size: 1MiB, sample: 0}");
  EXPECT_EQ(low.get_size("rotate_size"), 1u << 20);
  EXPECT_EQ(low.get_double("sample"), 0.0);
  Options high = options_of(kFileSink, "{path: x, rotate_size: 1GiB, sample: 1}");
  EXPECT_EQ(high.get_size("rotate_size"), 1u << 30);

  EXPECT_EQ(errors_of(kFileSink, yaml(R"(
path: x
rotate_size: 1048575
sample: 1.5
)")),
            (std::vector<std::string>{"<options>:2:14: rotate_size must be >= 1MiB",
                                      "<options>:3:9: sample must be <= 1"}));
  EXPECT_EQ(errors_of(kGenerator, "rate: 1001\ninterval: 999us\n"),
            (std::vector<std::string>{"<options>:1:7: rate must be <= 1000",
                                      "<options>:2:11: interval must be >= 1ms"}));
}

TEST(OptionsFromYaml, EnumAcceptsOnlyItsChoices) {
  EXPECT_EQ(
      errors_of(kGenerator, "format: jsn\n"),
      (std::vector<std::string>{
          "<options>:1:9: format: expected one of json, text, got 'jsn' (did you mean 'json'?)"}));
  EXPECT_EQ(
      errors_of(kGenerator, "format: [json]\n"),
      (std::vector<std::string>{"<options>:1:9: format: expected one of json, text, got a list"}));
}

TEST(OptionsFromYaml, WrongTypesNameWhatWasExpected) {
  EXPECT_EQ(
      errors_of(kGenerator, yaml(R"(
rate: many
loop: yes
lines: {a: b}
interval: 5
)")),
      (std::vector<std::string>{
          "<options>:1:7: rate: expected an integer, got 'many'",
          "<options>:2:7: loop: expected true or false, got 'yes'",
          "<options>:3:8: lines: expected a string or a list of strings, got a mapping",
          "<options>:4:11: interval: expected a duration such as 1s or 250ms, got '5' (a unit "
          "is required)",
      }));
  EXPECT_EQ(
      errors_of(kFileSink, "path:\nrotate_size: [1]\n"),
      (std::vector<std::string>{
          "<options>:1:1: path: expected a string, got an empty value",
          "<options>:2:14: rotate_size: expected a size such as 4096, 64KiB or 1MiB, got a list",
      }));
}

TEST(OptionsFromYaml, NestedObjectsAreValidatedRecursively) {
  Options o = options_of(kWindow, yaml(R"(
metrics: {n: count}
window:
  size: 1500ms
  time: event
)"));
  const OptionValue& window = o.get_object("window");
  EXPECT_EQ(window.type, OptionType::kObject);
  EXPECT_EQ(window.get_duration_ns("size"), 1500 * kMs);
  EXPECT_EQ(window.get_string("time"), "event");
  EXPECT_EQ(window.get_duration_ns("allowed_lateness", -1), 0);

  EXPECT_EQ(
      errors_of(kWindow, yaml(R"(
metrics: {n: count}
window:
  size: fast
)")),
      (std::vector<std::string>{
          "<options>:3:9: window.size: expected a duration such as 1s or 250ms, got 'fast'"}));
  EXPECT_EQ(errors_of(kWindow, yaml(R"(
metrics: {n: count}
window: {size: 1s, sise: 2s}
)")),
            (std::vector<std::string>{
                "<options>:2:20: unknown option 'window.sise' (did you mean 'window.size'?)"}));
  EXPECT_EQ(errors_of(kWindow, yaml(R"(
metrics: {n: count}
window:
  time: event
)")),
            (std::vector<std::string>{"<options>:2:1: missing required option 'window.size'"}));
  EXPECT_EQ(errors_of(kWindow, "metrics: {n: count}\nwindow: 1s\n"),
            (std::vector<std::string>{"<options>:2:9: window: expected a mapping, got '1s'"}));
}

TEST(OptionsFromYaml, AbsentObjectGetsDefaultsUnlessAChildIsRequired) {
  Options o = options_of(kStdout, "");
  ASSERT_TRUE(o.has("retry"));
  EXPECT_EQ(o.get_object("retry").get_duration_ns("initial"), 100 * kMs);
  EXPECT_EQ(o.get_object("retry").get_duration_ns("max"), 30 * kSec);
  EXPECT_EQ(o.get_object("retry").get_string("jitter"), "full");
  EXPECT_FALSE(o.has("tls"));

  Options partial = options_of(kStdout, "retry: {max: 5s}");
  EXPECT_EQ(partial.get_object("retry").get_duration_ns("initial"), 100 * kMs);
  EXPECT_EQ(partial.get_object("retry").get_duration_ns("max"), 5 * kSec);

  EXPECT_EQ(errors_of(kStdout, "format: text\ntls: {cert: /c.pem}\n"),
            (std::vector<std::string>{"<options>:2:1: missing required option 'tls.key'"}));
}

TEST(OptionsFromYaml, StringMapsTakeScalarsAndLists) {
  Options o = options_of(kJson, yaml(R"(
fields:
  a: x
  b: [y, z]
)"));
  const OptionValue& fields = o.get_object("fields");
  EXPECT_EQ(fields.type, OptionType::kStringMap);
  EXPECT_EQ(keys(fields), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(fields.find("a")->type, OptionType::kString);
  EXPECT_EQ(fields.find("a")->s, "x");
  EXPECT_EQ(fields.find("a")->list, (std::vector<std::string>{"x"}));
  EXPECT_EQ(fields.find("b")->type, OptionType::kStringList);
  EXPECT_EQ(fields.find("b")->list, (std::vector<std::string>{"y", "z"}));

  EXPECT_EQ(errors_of(kJson, yaml(R"(
fields:
  a: x
  c: {d: e}
)")),
            (std::vector<std::string>{
                "<options>:3:6: fields.c: expected a string or a list of strings, got a mapping"}));
  EXPECT_EQ(errors_of(kJson, "fields: [a]\n"),
            (std::vector<std::string>{
                "<options>:1:9: fields: expected a mapping of names to strings, got a list"}));
}

TEST(OptionsFromYaml, InvalidSchemaDefaultIsReportedNamingTheOption) {
  EXPECT_EQ(
      errors_of(kBroken, ""),
      (std::vector<std::string>{"<options>:1:1: invalid default 'lots' in the plugin's schema: "
                                "limit: expected a size such as 4096, 64KiB or 1MiB, got 'lots'"}));
  // A configured value does not consult the default.
  EXPECT_EQ(parse(kBroken, "limit: 1KiB").options->get_size("limit"), 1024u);
}

TEST(OptionsFromYaml, DuplicateKeysAndSyntaxErrors) {
  EXPECT_EQ(errors_of(kFileSink, "path: a\npath: b\n"),
            (std::vector<std::string>{"<options>:2:1: duplicate key 'path'"}));
  EXPECT_EQ(errors_of(kFileSink, "- path\n"),
            (std::vector<std::string>{"<options>:1:1: expected a mapping of options, got a list"}));
  std::vector<std::string> errors = errors_of(kFileSink, "path: [a\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "<options>:2:1: YAML syntax error: end of sequence flow not found");
}

TEST(OptionsFromYaml, DoesNotSubstituteEnvironmentReferences) {
  EXPECT_EQ(options_of(kFileSink, "path: ${HOME}/x").get_string("path"), "${HOME}/x");
}

TEST(OptionsFromYaml, ObjectListItemsAreObjectsKeyedByTheirIndex) {
  Options o = options_of(kFilter, yaml(R"(
rules:
  - field: title
    limit: 5
  - {name: second, field: n, action: keep, every: 250ms, retry: {max: 5s}}
)"));
  const OptionValue& rules = o.get_object("rules");
  EXPECT_EQ(rules.type, OptionType::kObjectList);
  EXPECT_EQ(keys(rules), (std::vector<std::string>{"0", "1"}));
  ASSERT_EQ(o.get_object_list("rules").size(), 2u);

  const OptionValue& first = o.get_object_list("rules")[0].second;
  EXPECT_EQ(first.type, OptionType::kObject);
  // Declaration order; defaults applied inside the item, an absent object filled with its own.
  EXPECT_EQ(keys(first), (std::vector<std::string>{"field", "action", "limit", "retry"}));
  EXPECT_EQ(first.get_string("field"), "title");
  EXPECT_EQ(first.get_string("action"), "drop");
  EXPECT_EQ(first.get_int("limit"), 5);
  EXPECT_EQ(first.get_object("retry").get_duration_ns("max"), 30 * kSec);
  EXPECT_FALSE(first.has("name"));

  const OptionValue& second = *rules.find("1");
  EXPECT_EQ(second.get_string("name"), "second");
  EXPECT_EQ(second.get_string("action"), "keep");
  EXPECT_EQ(second.get_int("limit"), 10);
  EXPECT_EQ(second.get_duration_ns("every"), 250 * kMs);
  EXPECT_EQ(second.get_object("retry").get_duration_ns("initial"), 100 * kMs);
  EXPECT_EQ(second.get_object("retry").get_duration_ns("max"), 5 * kSec);

  EXPECT_EQ(o.get_string("mode"), "all");
}

TEST(OptionsFromYaml, ObjectListMayBeEmptyOrAbsent) {
  Options empty = options_of(kFilter, "rules: []");
  ASSERT_TRUE(empty.has("rules"));
  EXPECT_TRUE(empty.get_object_list("rules").empty());
  Options absent = options_of(kFilter, "mode: first");
  EXPECT_FALSE(absent.has("rules"));
  EXPECT_TRUE(absent.get_object_list("rules").empty());
}

TEST(OptionsFromYaml, ObjectListReportsEveryItemsErrorsAtTheirPositions) {
  EXPECT_EQ(
      errors_of(kFilter, yaml(R"(
rules:
  - field: title
    limt: 5
  - field: [a]
    action: dorp
    limit: 101
  - name: x
  - 3
  - [field: a]
  - every: 0s
    field: y
    retry: {jitter: some}
mode: every
)")),
      (std::vector<std::string>{
          "<options>:3:5: unknown option 'rules.0.limt' (did you mean 'rules.0.limit'?)",
          "<options>:4:12: rules.1.field: expected a string, got a list",
          "<options>:5:13: rules.1.action: expected one of drop, keep, got 'dorp' (did you "
          "mean 'drop'?)",
          "<options>:6:12: rules.1.limit must be <= 100",
          "<options>:7:5: missing required option 'rules.2.field'",
          "<options>:8:5: rules.3: expected a mapping, got '3'",
          "<options>:9:5: rules.4: expected a mapping, got a list",
          "<options>:10:12: rules.5.every must be >= 1ms",
          "<options>:12:21: rules.5.retry.jitter: expected one of full, none, got 'some' (did "
          "you mean 'none'?)",
          "<options>:13:7: mode: expected one of all, first, got 'every'",
      }));
}

TEST(OptionsFromYaml, ObjectListMustBeAList) {
  EXPECT_EQ(errors_of(kFilter, "rules: {field: a}\n"),
            (std::vector<std::string>{
                "<options>:1:8: rules: expected a list of mappings, got a mapping"}));
  EXPECT_EQ(errors_of(kFilter, "rules: field=a\n"),
            (std::vector<std::string>{
                "<options>:1:8: rules: expected a list of mappings, got 'field=a'"}));
  EXPECT_EQ(errors_of(kFilter, "rules:\nmode: all\n"),
            (std::vector<std::string>{
                "<options>:1:1: rules: expected a list of mappings, got an empty value"}));
}

TEST(OptionsFromYaml, ObjectListItemsRejectDuplicateKeys) {
  EXPECT_EQ(errors_of(kFilter, "rules:\n  - {field: a, field: b}\n"),
            (std::vector<std::string>{"<options>:2:16: duplicate key 'field'"}));
}

}  // namespace
}  // namespace ingestd::config

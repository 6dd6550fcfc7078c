// Validation of YAML values against OptionSpec tables: the one code path for plugin options,
// schema defaults and the core's own keys (top level, queue, batch, log).
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/config.h"

namespace ingestd::config::detail {

// Collects the errors of one file, turning yaml-cpp's 0-based marks into 1-based positions.
// Not thread-safe; one per load.
class Reporter {
 public:
  explicit Reporter(std::string file) : file_(std::move(file)) {}

  Position position(const YAML::Mark& mark) const;
  void error(const YAML::Mark& mark, std::string message);
  void error(Position pos, std::string message) {
    errors_.push_back(Error{std::move(pos), std::move(message)});
  }
  size_t count() const { return errors_.size(); }
  // The errors, stably sorted by (line, column).
  std::vector<Error> sorted() const;

 private:
  std::string file_;
  std::vector<Error> errors_;
};

// One key of a mapping. Node copies share the document, so holding them is cheap.
struct MapEntry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;

  YAML::Mark key_mark() const { return key_node.Mark(); }
  // Where a bad value is reported: the value itself, or the key when the value is empty and
  // yaml-cpp marks it at the next token.
  YAML::Mark value_mark() const;
};

// Parses the one YAML document of `text` (a null node when there is none). Syntax errors and a
// second document are reported; returns nullopt then.
std::optional<YAML::Node> parse_document(std::string_view text, Reporter& reporter);

// The entries of a mapping in file order. Keys that are not scalars and repeated keys are
// reported (messages start with `prefix`) and left out; a null node has no entries.
std::vector<MapEntry> map_entries(const YAML::Node& map, Reporter& reporter,
                                  std::string_view prefix);

// "'text'", "a list", "a mapping" or "an empty value": what a message says it got.
std::string describe(const YAML::Node& node);

// "a.b" from "a" and "b"; "b" when the path is empty.
std::string join_path(std::string_view path, std::string_view name);

// Reads values against specs, reporting through a Reporter. Messages read
// `<prefix><path>: expected ..., got ...`, `<prefix><path> must be >= <min>`,
// `<prefix>unknown <noun> '<path>'` and `<prefix>missing required <noun> '<path>'`.
// Every scalar is passed through environment substitution first when an Environment is given.
// The positions of the values read (not of defaults) are recorded in `positions` when given.
class ValueReader {
 public:
  ValueReader(Reporter& reporter, const Environment* env, std::string prefix,
              std::map<std::string, Position>* positions = nullptr, std::string noun = "option");

  // Validates the entries of a mapping against `specs`: values in declaration order, then
  // defaults, then required options. Keys listed in `skip` belong to the caller and are ignored;
  // `suggest` are extra names offered in "did you mean". `owner` is the mark of the key that
  // holds the mapping: missing required options are reported there.
  OptionValue object(const std::vector<MapEntry>& entries, std::span<const OptionSpec> specs,
                     std::string_view path, const YAML::Mark& owner,
                     std::span<const std::string> skip = {},
                     std::span<const std::string> suggest = {});

  // Validates one value. `mark` is where a bad value is reported, `owner` the key holding it.
  // Returns false after reporting.
  bool value(const YAML::Node& node, const YAML::Mark& mark, const YAML::Mark& owner,
             const OptionSpec& spec, const std::string& path, OptionValue& out);

  // A scalar's text after environment substitution; nullopt after reporting.
  std::optional<std::string> scalar(const YAML::Node& node, const YAML::Mark& mark,
                                    const std::string& path);

  // Reports `<prefix><message>` at `mark` (or at the fixed mark used for defaults).
  void error(const YAML::Mark& mark, const std::string& message);

  const std::string& prefix() const { return prefix_; }

  // After object(): a value that failed validation is replaced by its schema default (or left
  // out when it has none), so that a factory can still run on the result and report its own
  // errors in the same pass. True when that is not possible: a required option has no value.
  bool incomplete() const { return incomplete_; }

 private:
  bool scalar_value(const YAML::Node& node, const YAML::Mark& mark, const OptionSpec& spec,
                    const std::string& path, OptionValue& out);
  bool list_value(const YAML::Node& node, const YAML::Mark& mark, const std::string& path,
                  OptionValue& out);
  bool map_value(const YAML::Node& node, const YAML::Mark& mark, const std::string& path,
                 OptionValue& out);
  // kObjectList: each item read like a kObject, under the path `<path>.<index>`.
  bool object_list(const YAML::Node& node, const YAML::Mark& mark, const OptionSpec& spec,
                   const std::string& path, OptionValue& out);
  bool check_bounds(const YAML::Mark& mark, const OptionSpec& spec, const std::string& path,
                    const OptionValue& value);
  bool default_value(const OptionSpec& spec, const std::string& path, const YAML::Mark& owner,
                     OptionValue& out);
  void record(const std::string& path, const YAML::Mark& mark);

  Reporter& reporter_;
  const Environment* env_;
  std::string prefix_;
  std::map<std::string, Position>* positions_;
  std::string noun_;
  std::optional<YAML::Mark> fixed_mark_;  // set while reading a schema default
  bool incomplete_ = false;
};

}  // namespace ingestd::config::detail

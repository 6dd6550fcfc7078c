#include "config/options.h"

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>

#include "config/syntax.h"

namespace ingestd::config::detail {
namespace {

const char* expectation(const OptionSpec& spec) {
  switch (spec.type) {
    case OptionType::kBool:
      return "expected true or false";
    case OptionType::kInt:
      return "expected an integer";
    case OptionType::kDouble:
      return "expected a number";
    case OptionType::kString:
      return "expected a string";
    case OptionType::kDuration:
      return "expected a duration such as 1s or 250ms";
    case OptionType::kSize:
      return "expected a size such as 4096, 64KiB or 1MiB";
    case OptionType::kEnum:
      return "expected one of";
    case OptionType::kStringList:
      return "expected a string or a list of strings";
    case OptionType::kStringMap:
      return "expected a mapping of names to strings";
    case OptionType::kObject:
      return "expected a mapping";
    case OptionType::kObjectList:
      return "expected a list of mappings";
  }
  return "unexpected value";
}

std::vector<std::string> split_choices(const char* choices) {
  std::vector<std::string> out;
  if (!choices) return out;
  std::string_view rest = choices;
  while (true) {
    size_t bar = rest.find('|');
    out.emplace_back(rest.substr(0, bar));
    if (bar == std::string_view::npos) break;
    rest.remove_prefix(bar + 1);
  }
  return out;
}

// Parses a bound or a scalar value of a numeric type into `out`.
bool parse_number(OptionType type, std::string_view text, OptionValue& out) {
  switch (type) {
    case OptionType::kInt:
      return parse_int(text, out.i);
    case OptionType::kDouble:
      return parse_double(text, out.d);
    case OptionType::kDuration:
      return parse_duration(text, out.i);
    case OptionType::kSize: {
      uint64_t bytes = 0;
      if (!parse_size(text, bytes)) return false;
      out.i = static_cast<int64_t>(bytes);
      return true;
    }
    default:
      return false;
  }
}

bool is_required(const OptionSpec& spec) {
  return spec.required && !spec.default_value;
}

// An absent optional object is filled in when its children declare defaults and none is
// required: `retry:` left out still yields retry.initial = 100ms. An object with a required
// child (or with nothing to fill in) stays absent, so that has("tls") means "configured".
bool fills_with_defaults(const OptionSpec& spec) {
  if (spec.type != OptionType::kObject || !spec.children) return false;
  bool any = false;
  for (uint32_t i = 0; i < spec.child_count; ++i) {
    const OptionSpec& child = spec.children[i];
    if (is_required(child)) return false;
    if (child.default_value || fills_with_defaults(child)) any = true;
  }
  return any;
}

}  // namespace

Position Reporter::position(const YAML::Mark& mark) const {
  if (mark.is_null()) return Position{file_, 1, 1};
  return Position{file_, mark.line + 1, mark.column + 1};
}

void Reporter::error(const YAML::Mark& mark, std::string message) {
  errors_.push_back(Error{position(mark), std::move(message)});
}

std::vector<Error> Reporter::sorted() const {
  std::vector<Error> out = errors_;
  std::stable_sort(out.begin(), out.end(), [](const Error& a, const Error& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });
  return out;
}

YAML::Mark MapEntry::value_mark() const {
  YAML::Mark mark = value.Mark();
  if (value.IsNull() && (mark.is_null() || mark.line != key_node.Mark().line)) return key_mark();
  return mark;
}

namespace {

YAML::Mark mark_at(std::string_view text, size_t offset) {
  YAML::Mark mark;
  mark.pos = static_cast<int>(offset);
  mark.line = static_cast<int>(std::count(text.begin(), text.begin() + offset, '\n'));
  size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  line_start = offset == 0 || line_start == std::string_view::npos ? 0 : line_start + 1;
  mark.column = static_cast<int>(offset - line_start);
  return mark;
}

// The tab in the indentation of the line nearest above or at `line` (0-based), if any: yaml-cpp
// reports such a line as "illegal map value" or "end of map not found", far from the cause.
std::optional<YAML::Mark> indenting_tab(std::string_view text, int line) {
  std::optional<YAML::Mark> found;
  size_t start = 0;
  for (int row = 0; row <= line && start < text.size(); ++row) {
    size_t end = std::min(text.find('\n', start), text.size());
    size_t indent_end = text.find_first_not_of(" \t", start);
    if (indent_end != std::string_view::npos && indent_end < end) {
      size_t tab = text.find('\t', start);
      if (tab < indent_end) found = mark_at(text, tab);
    }
    start = end + 1;
  }
  return found;
}

}  // namespace

std::optional<YAML::Node> parse_document(std::string_view text, Reporter& reporter) {
  if (auto problem = find_encoding_problem(text)) {
    reporter.error(mark_at(text, problem->offset), problem->reason);
    return std::nullopt;
  }
  // yaml-cpp 0.7's LoadAll() never returns on some malformed input (a ',' where a document
  // should start), so only the first document is parsed and a second one is found by its marker:
  // "---" at the start of a line after content, or content after a "..." line.
  bool content = false;
  bool ended = false;
  int line = 0;
  for (size_t start = 0; start < text.size(); ++line) {
    size_t end = std::min(text.find('\n', start), text.size());
    std::string_view row = text.substr(start, end - start);
    start = end + 1;
    auto marker = [&](std::string_view m) {
      return row.substr(0, 3) == m &&
             (row.size() == 3 || row[3] == ' ' || row[3] == '\t' || row[3] == '\r');
    };
    auto has_content = [](std::string_view r) {
      size_t first = r.find_first_not_of(" \t\r");
      return first != std::string_view::npos && r[first] != '#';
    };
    bool second = false;
    if (marker("---")) {
      second = content || ended;
      content = has_content(row.substr(3));
    } else if (marker("...")) {
      ended = true;
    } else if (has_content(row) && row[0] != '%') {
      second = ended;
      content = true;
    }
    if (second) {
      YAML::Mark mark;
      mark.line = line;
      reporter.error(mark, "expected one YAML document, found a second one");
      return std::nullopt;
    }
  }
  try {
    YAML::Node root = YAML::Load(std::string(text));
    YAML::Mark mark = root.Mark();
    // Load() reads a ',' at the start of a document as an empty document and stops there.
    if (root.IsNull() && !mark.is_null() && static_cast<size_t>(mark.pos) < text.size() &&
        text[static_cast<size_t>(mark.pos)] == ',') {
      reporter.error(mark, "YAML syntax error: unexpected ','");
      return std::nullopt;
    }
    return root;
  } catch (const YAML::Exception& e) {
    if (auto tab = indenting_tab(text, e.mark.line)) {
      reporter.error(*tab,
                     "YAML syntax error: a tab character indents this line; YAML indents "
                     "with spaces only");
    } else {
      reporter.error(e.mark, "YAML syntax error: " + e.msg);
    }
    return std::nullopt;
  }
}

std::vector<MapEntry> map_entries(const YAML::Node& map, Reporter& reporter,
                                  std::string_view prefix) {
  std::vector<MapEntry> out;
  if (!map.IsMap()) return out;
  // A hash set, not a scan of `out`: a file may hold tens of thousands of components.
  std::unordered_set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    YAML::Node key = it->first;
    if (!key.IsScalar()) {
      reporter.error(key.Mark(),
                     fmt::format("{}expected a plain key, got {}", prefix, describe(key)));
      continue;
    }
    const std::string& name = key.Scalar();
    if (!seen.insert(name).second) {
      reporter.error(key.Mark(), fmt::format("{}duplicate key '{}'", prefix, name));
      continue;
    }
    out.push_back(MapEntry{name, key, it->second});
  }
  return out;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return fmt::format("'{}'", node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "an empty value";
  }
}

std::string join_path(std::string_view path, std::string_view name) {
  if (path.empty()) return std::string(name);
  return fmt::format("{}.{}", path, name);
}

ValueReader::ValueReader(Reporter& reporter, const Environment* env, std::string prefix,
                         std::map<std::string, Position>* positions, std::string noun)
    : reporter_(reporter),
      env_(env),
      prefix_(std::move(prefix)),
      positions_(positions),
      noun_(std::move(noun)) {}

void ValueReader::error(const YAML::Mark& mark, const std::string& message) {
  reporter_.error(fixed_mark_ ? *fixed_mark_ : mark, prefix_ + message);
}

void ValueReader::record(const std::string& path, const YAML::Mark& mark) {
  if (positions_ && !fixed_mark_) (*positions_)[path] = reporter_.position(mark);
}

OptionValue ValueReader::object(const std::vector<MapEntry>& entries,
                                std::span<const OptionSpec> specs, std::string_view path,
                                const YAML::Mark& owner, std::span<const std::string> skip,
                                std::span<const std::string> suggest) {
  OptionValue obj;
  obj.type = OptionType::kObject;
  std::vector<const MapEntry*> given(specs.size(), nullptr);
  for (const MapEntry& entry : entries) {
    if (std::find(skip.begin(), skip.end(), entry.key) != skip.end()) continue;
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&](const OptionSpec& s) { return s.name && entry.key == s.name; });
    if (spec != specs.end()) {
      given[static_cast<size_t>(spec - specs.begin())] = &entry;
      continue;
    }
    std::vector<std::string> candidates(suggest.begin(), suggest.end());
    for (const OptionSpec& s : specs)
      if (s.name) candidates.emplace_back(s.name);
    std::string hint;
    if (auto best = closest(entry.key, candidates)) {
      hint = fmt::format(" (did you mean '{}'?)", join_path(path, *best));
    }
    error(entry.key_mark(),
          fmt::format("unknown {} '{}'{}", noun_, join_path(path, entry.key), hint));
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    const OptionSpec& spec = specs[i];
    if (!spec.name) continue;
    std::string option_path = join_path(path, spec.name);
    OptionValue result;
    if (const MapEntry* entry = given[i]) {
      if (value(entry->value, entry->value_mark(), entry->key_mark(), spec, option_path, result)) {
        obj.entries.emplace_back(spec.name, std::move(result));
      } else if ((spec.type == OptionType::kObject && entry->value.IsMap()) ||
                 (spec.type == OptionType::kObjectList && entry->value.IsSequence())) {
        // Its children (or items) that failed were replaced by their defaults or left out: keep
        // it.
        obj.entries.emplace_back(spec.name, std::move(result));
      } else if (spec.default_value) {
        // Already reported: the factory sees the default, as if the option were not given, so
        // that it can still report its own errors about the other options.
        OptionValue fallback;
        if (default_value(spec, option_path, owner, fallback))
          obj.entries.emplace_back(spec.name, std::move(fallback));
      } else if (spec.required) {
        incomplete_ = true;
      }
    } else if (spec.default_value) {
      if (default_value(spec, option_path, owner, result))
        obj.entries.emplace_back(spec.name, std::move(result));
    } else if (spec.required) {
      error(owner, fmt::format("missing required {} '{}'", noun_, option_path));
      incomplete_ = true;
    } else if (fills_with_defaults(spec)) {
      result = object({}, {spec.children, spec.child_count}, option_path, owner);
      obj.entries.emplace_back(spec.name, std::move(result));
    }
  }
  return obj;
}

bool ValueReader::value(const YAML::Node& node, const YAML::Mark& mark, const YAML::Mark& owner,
                        const OptionSpec& spec, const std::string& path, OptionValue& out) {
  out = OptionValue{};
  out.type = spec.type;
  bool ok = false;
  switch (spec.type) {
    case OptionType::kStringList:
      ok = list_value(node, mark, path, out);
      break;
    case OptionType::kStringMap:
      ok = map_value(node, mark, path, out);
      break;
    case OptionType::kObject:
      if (!node.IsMap()) {
        error(mark, fmt::format("{}: {}, got {}", path, expectation(spec), describe(node)));
        return false;
      } else {
        size_t before = reporter_.count();
        out = object(map_entries(node, reporter_, prefix_), {spec.children, spec.child_count}, path,
                     owner);
        ok = reporter_.count() == before;
      }
      break;
    case OptionType::kObjectList:
      ok = object_list(node, mark, spec, path, out);
      break;
    default:
      ok = scalar_value(node, mark, spec, path, out);
      break;
  }
  if (ok) record(path, mark);
  return ok;
}

std::optional<std::string> ValueReader::scalar(const YAML::Node& node, const YAML::Mark& mark,
                                               const std::string& path) {
  if (!env_) return node.Scalar();
  std::string out;
  std::string message;
  if (!substitute_env(node.Scalar(), *env_, out, message)) {
    error(mark, path.empty() ? message : fmt::format("{}: {}", path, message));
    return std::nullopt;
  }
  return out;
}

bool ValueReader::scalar_value(const YAML::Node& node, const YAML::Mark& mark,
                               const OptionSpec& spec, const std::string& path, OptionValue& out) {
  std::vector<std::string> choices;
  std::string expected = expectation(spec);
  if (spec.type == OptionType::kEnum) {
    choices = split_choices(spec.choices);
    if (choices.empty() || choices.front().empty()) {
      error(mark, fmt::format("{}: the plugin's schema declares no choices", path));
      return false;
    }
    expected = fmt::format("expected one of {}", fmt::join(choices, ", "));
  }
  if (!node.IsScalar()) {
    error(mark, fmt::format("{}: {}, got {}", path, expected, describe(node)));
    return false;
  }
  auto text = scalar(node, mark, path);
  if (!text) return false;
  bool ok = true;
  std::string hint;
  switch (spec.type) {
    case OptionType::kBool:
      ok = parse_bool(*text, out.b);
      break;
    case OptionType::kString:
      out.s = *text;
      break;
    case OptionType::kEnum:
      ok = std::find(choices.begin(), choices.end(), *text) != choices.end();
      if (ok)
        out.s = *text;
      else
        hint = did_you_mean(*text, choices);
      break;
    case OptionType::kDuration: {
      ok = parse_number(spec.type, *text, out);
      double number = 0;
      if (!ok && parse_double(*text, number)) hint = " (a unit is required)";
      break;
    }
    default:
      ok = parse_number(spec.type, *text, out);
      break;
  }
  if (!ok && spec.type == OptionType::kInt && integer_syntax(*text)) {
    error(mark, fmt::format("{}: {} is out of range: expected an integer from {} to {}", path,
                            *text, spec.min ? spec.min : std::to_string(INT64_MIN),
                            spec.max ? spec.max : std::to_string(INT64_MAX)));
    return false;
  }
  if (!ok) {
    error(mark, fmt::format("{}: {}, got '{}'{}", path, expected, *text, hint));
    return false;
  }
  return check_bounds(mark, spec, path, out);
}

bool ValueReader::check_bounds(const YAML::Mark& mark, const OptionSpec& spec,
                               const std::string& path, const OptionValue& value) {
  struct Bound {
    const char* text;
    bool is_min;
  };
  for (Bound bound : {Bound{spec.min, true}, Bound{spec.max, false}}) {
    if (!bound.text) continue;
    OptionValue limit;
    if (!parse_number(spec.type, bound.text, limit)) {
      error(mark, fmt::format("{}: the plugin's schema has an invalid {} '{}'", path,
                              bound.is_min ? "minimum" : "maximum", bound.text));
      return false;
    }
    bool below = spec.type == OptionType::kDouble ? value.d < limit.d : value.i < limit.i;
    bool above = spec.type == OptionType::kDouble ? value.d > limit.d : value.i > limit.i;
    if (bound.is_min ? below : above) {
      error(mark, fmt::format("{} must be {} {}", path, bound.is_min ? ">=" : "<=", bound.text));
      return false;
    }
  }
  return true;
}

bool ValueReader::list_value(const YAML::Node& node, const YAML::Mark& mark,
                             const std::string& path, OptionValue& out) {
  if (node.IsScalar()) {
    auto text = scalar(node, mark, path);
    if (!text) return false;
    out.list.push_back(std::move(*text));
    return true;
  }
  if (!node.IsSequence()) {
    error(mark,
          fmt::format("{}: expected a string or a list of strings, got {}", path, describe(node)));
    return false;
  }
  bool ok = true;
  size_t index = 0;
  for (YAML::Node item : node) {
    std::string item_path = fmt::format("{}[{}]", path, index++);
    YAML::Mark item_mark = item.IsNull() ? mark : item.Mark();
    if (!item.IsScalar()) {
      error(item_mark, fmt::format("{}: expected a string, got {}", item_path, describe(item)));
      ok = false;
      continue;
    }
    auto text = scalar(item, item_mark, item_path);
    if (text)
      out.list.push_back(std::move(*text));
    else
      ok = false;
  }
  return ok;
}

bool ValueReader::object_list(const YAML::Node& node, const YAML::Mark& mark,
                              const OptionSpec& spec, const std::string& path, OptionValue& out) {
  if (!node.IsSequence()) {
    error(mark, fmt::format("{}: {}, got {}", path, expectation(spec), describe(node)));
    return false;
  }
  // Recorded even when an item fails, so that a factory's report about a later item still finds
  // its way to the file.
  record(path, mark);
  size_t before = reporter_.count();
  size_t index = 0;
  for (YAML::Node item : node) {
    std::string key = std::to_string(index++);
    std::string item_path = join_path(path, key);
    YAML::Mark item_mark = item.IsNull() ? mark : item.Mark();
    if (!item.IsMap()) {
      error(item_mark, fmt::format("{}: expected a mapping, got {}", item_path, describe(item)));
      continue;
    }
    record(item_path, item_mark);
    // An item without a required option is left out, the list itself is still complete: the
    // factory can then check the other items in the same pass.
    bool was_incomplete = std::exchange(incomplete_, false);
    OptionValue value = object(map_entries(item, reporter_, prefix_),
                               {spec.children, spec.child_count}, item_path, item_mark);
    bool keep = !incomplete_;
    incomplete_ = was_incomplete;
    if (keep) out.entries.emplace_back(std::move(key), std::move(value));
  }
  return reporter_.count() == before;
}

bool ValueReader::map_value(const YAML::Node& node, const YAML::Mark& mark, const std::string& path,
                            OptionValue& out) {
  if (!node.IsMap()) {
    error(mark,
          fmt::format("{}: expected a mapping of names to strings, got {}", path, describe(node)));
    return false;
  }
  size_t before = reporter_.count();
  for (const MapEntry& entry : map_entries(node, reporter_, prefix_)) {
    std::string entry_path = join_path(path, entry.key);
    YAML::Mark entry_mark = entry.value_mark();
    OptionValue value;
    if (entry.value.IsScalar()) {
      auto text = scalar(entry.value, entry_mark, entry_path);
      if (!text) continue;
      value.type = OptionType::kString;
      value.s = *text;
      value.list.push_back(std::move(*text));
    } else if (entry.value.IsSequence()) {
      value.type = OptionType::kStringList;
      if (!list_value(entry.value, entry_mark, entry_path, value)) continue;
    } else {
      error(entry_mark, fmt::format("{}: expected a string or a list of strings, got {}",
                                    entry_path, describe(entry.value)));
      continue;
    }
    record(entry_path, entry_mark);
    out.entries.emplace_back(entry.key, std::move(value));
  }
  return reporter_.count() == before;
}

bool ValueReader::default_value(const OptionSpec& spec, const std::string& path,
                                const YAML::Mark& owner, OptionValue& out) {
  ValueReader reader(
      reporter_, nullptr,
      fmt::format("{}invalid default '{}' in the plugin's schema: ", prefix_, spec.default_value),
      nullptr, noun_);
  reader.fixed_mark_ = owner;
  YAML::Node node;
  try {
    node = YAML::Load(spec.default_value);
  } catch (const YAML::Exception& e) {
    reader.error(owner, fmt::format("{}: YAML syntax error: {}", path, e.msg));
    return false;
  }
  // An empty default ("") means the empty string, not a missing value.
  if (node.IsNull() && std::string_view(spec.default_value).empty()) node = YAML::Node("");
  return reader.value(node, owner, owner, spec, path, out);
}

}  // namespace ingestd::config::detail

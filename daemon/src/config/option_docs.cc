#include "config/option_docs.h"

#include <algorithm>

#include <fmt/format.h>

namespace ingestd::config {

namespace {

const char* type_name(OptionType t) {
  switch (t) {
    case OptionType::kBool:
      return "bool";
    case OptionType::kInt:
      return "int";
    case OptionType::kDouble:
      return "number";
    case OptionType::kString:
      return "string";
    case OptionType::kDuration:
      return "duration";
    case OptionType::kSize:
      return "size";
    case OptionType::kEnum:
      return "enum";
    case OptionType::kStringList:
      return "list of strings";
    case OptionType::kStringMap:
      return "map";
    case OptionType::kObject:
      return "object";
    case OptionType::kObjectList:
      return "list of objects";
  }
  return "?";
}

std::string facts(const OptionSpec& o) {
  std::string s = type_name(o.type);
  if (o.choices) s += fmt::format(" ({})", o.choices);
  if (o.required) s += ", required";
  if (o.default_value) s += fmt::format(", default {}", o.default_value);
  if (o.min && o.max)
    s += fmt::format(", {} to {}", o.min, o.max);
  else if (o.min)
    s += fmt::format(", >= {}", o.min);
  else if (o.max)
    s += fmt::format(", <= {}", o.max);
  return s;
}

// Table cells cannot hold a bare '|'.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

void print_options(std::string& out, std::span<const OptionSpec> options, int depth, bool markdown,
                   const std::string& prefix) {
  for (const OptionSpec& o : options) {
    std::string name = prefix + o.name;
    if (markdown)
      out += fmt::format("| `{}` | {} | {} |\n", name, cell(facts(o)), cell(o.doc));
    else
      out +=
          fmt::format("{:{}}{} ({}): {}\n", "", 4 + 2 * depth, name, facts(o), plain_text(o.doc));
    std::span<const OptionSpec> children{o.children, o.child_count};
    if (o.type == OptionType::kObject)
      print_options(out, children, depth + 1, markdown, name + ".");
    else if (o.type == OptionType::kObjectList)
      print_options(out, children, depth + 1, markdown, name + "[].");
  }
}

}  // namespace

std::string option_docs(std::span<const OptionSpec> options, bool markdown) {
  std::string out;
  print_options(out, options, 0, markdown, "");
  return out;
}

std::string plain_text(std::string_view markdown) {
  std::string out(markdown);
  std::replace(out.begin(), out.end(), '`', '\'');
  return out;
}

}  // namespace ingestd::config

// The reference text of plugin options, generated from their OptionSpec tables: what
// `ingestd plugins` prints and `ingestd plugins --markdown` writes into docs/components.md.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "ingestd/schema.h"

namespace ingestd::config {

// One line per option, children after their parent: a kObject's as `parent.child`, the options
// of a kObjectList's items as `parent[].child`. Markdown gives rows of an
// `| option | type | description |` table; text gives lines indented by depth, for a terminal.
std::string option_docs(std::span<const OptionSpec> options, bool markdown);

// Plain text for a terminal: Markdown code spans (`batch`) become quoted ('batch').
std::string plain_text(std::string_view markdown);

}  // namespace ingestd::config

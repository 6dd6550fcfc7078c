// JSON output helpers shared by sinks and aggregators.
#pragma once

#include <string>
#include <string_view>

#include "ingestd/event.h"
#include "ingestd/schema.h"

namespace ingestd::json {

// Appends `s` as a quoted JSON string, escaping quotes, backslashes and control characters.
void append_string(std::string& out, std::string_view s);
// Appends a value: strings quoted, raw JSON as it is, numbers in shortest round-trip form.
void append_value(std::string& out, const Value& v);
// Appends the event's fields as one flat JSON object (dotted keys stay dotted), no newline.
void append_fields(std::string& out, const Batch& batch, const Event& event);

// How a sink writes an event.
enum class Encoding {
  kAuto,  // the raw bytes when the event has them, else its fields as JSON
  kJson,  // always the fields as JSON
  kRaw,   // always the raw bytes
};
// Appends one line (with '\n') for the event in the given encoding.
void append_line(std::string& out, const Batch& batch, const Event& event, Encoding encoding);

// The `encoding` option of every sink that writes lines, and the value it names.
inline constexpr OptionSpec kEncodingOption{
    .name = "encoding",
    .type = OptionType::kEnum,
    .default_value = "auto",
    .choices = "auto|json|raw",
    .doc =
        "`raw`: the event's original bytes; `json`: its fields as one JSON object; `auto`: "
        "the raw bytes when the event has them (as read by a source), else the fields."};
Encoding encoding_from(std::string_view name);  // "auto" for anything else

}  // namespace ingestd::json

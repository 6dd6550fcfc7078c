// parse/json: newline-delimited JSON records -> events with flat fields.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ingestd/component.h"
#include "ingestd/plugin.h"
#include "ingestd/schema.h"
#include "sanitize.h"

namespace ingestd::plugins {

inline constexpr char kJsonParserDoc[] =
    "Parses each record as one JSON object (NDJSON, or server-sent-events lines with "
    "strip_prefix) into fields; nested objects become dotted keys. Records that are not JSON "
    "objects are dropped or dead-lettered.";

inline constexpr OptionSpec kJsonParserOptions[] = {
    {.name = "strip_prefix",
     .type = OptionType::kString,
     .doc = "A prefix every record must start with, removed before parsing (e.g. \"data: \" for "
            "server-sent events). Records without it are skipped and counted as `skipped`."},
    {.name = "on_error",
     .type = OptionType::kEnum,
     .default_value = "drop",
     .choices = "drop|dead_letter",
     .doc = "What happens to a record that is not valid JSON or not a JSON object: `drop` counts "
            "it as `errors`; `dead_letter` also writes it, with the reason, to the component's "
            "dead-letter file."},
    {.name = "time_field",
     .type = OptionType::kString,
     .doc = "Dotted path of the field holding the event time (e.g. `time` or `meta.ts`). When "
            "unset, or when the field is missing or unparseable, the event time is the ingest "
            "time (counted as `time_missing` when the field was configured)."},
    {.name = "time_format",
     .type = OptionType::kEnum,
     .default_value = "ms",
     .choices = "s|ms|us|ns|rfc3339",
     .doc = "How time_field is written: epoch seconds, milliseconds, microseconds or nanoseconds "
            "(integer, fractional, or a string holding such a number), or an RFC 3339 timestamp "
            "such as 2018-01-08T21:02:34.624Z or 2018-01-08T22:02:34+01:00."},
    {.name = "max_depth",
     .type = OptionType::kInt,
     .default_value = "8",
     .min = "1",
     .max = "64",
     .doc = "How many levels of nested objects are flattened into dotted keys: with 2, "
            "{\"a\":{\"b\":{\"c\":1}}} gives the field a.b = {\"c\":1}. Deeper objects and all "
            "arrays are kept as raw JSON values."},
    {.name = "fields",
     .type = OptionType::kStringList,
     .doc = "Only these fields are kept, as dotted paths (`uid`, `user.id`); one that names an "
            "object keeps everything below it. The rest of each record is still read, so "
            "malformed JSON anywhere is still an error, but makes no fields: parsing is cheaper "
            "and so is every component after it. time_field and the fields of sanitize rules "
            "are always kept. The raw bytes stay the whole record. Unset: every field."},
    {.name = "sanitize",
     .type = OptionType::kObjectList,
     .doc = "Rules applied to each parsed record, in order: a list of mappings, each with a "
            "`field`, at most one test and an `action` (see below). A missing field matches "
            "nothing. A rejected record leaves the batch, counted as `rejected` (not `parsed`) and "
            "as `sanitize.<name>.rejected`, and goes where `on_reject` says; it does not fail its "
            "batch's acknowledgement. A stripped or replaced field counts as "
            "`sanitize.<name>.stripped` or `.replaced`, and the event's raw bytes become its "
            "fields as one flat JSON object (dotted keys).",
     .children = kSanitizeRuleOptions,
     .child_count = std::size(kSanitizeRuleOptions)},
    {.name = "on_reject",
     .type = OptionType::kEnum,
     .default_value = "drop",
     .choices = "drop|dead_letter",
     .doc = "What happens to a record a sanitize rule rejects: `drop` removes and counts it; "
            "`dead_letter` also writes it as read, with the rule that rejected it, to the "
            "component's dead-letter file. Neither fails the acknowledgement of its batch, unless "
            "the dead-letter write fails (the record is then lost, as with on_error)."},
};

// Turns each event's raw bytes (one JSON object per record) into fields, in place.
//
// Per input event, exactly one of the counters parsed / errors / skipped / rejected grows:
// - skipped: a blank record, or one without strip_prefix when that is set;
// - errors: malformed JSON, or a top-level value that is not an object (dead-lettered with the
//   reason when on_error is dead_letter);
// - rejected: a sanitize rule rejected it (dropped, or dead-lettered with on_reject);
// - parsed: the event keeps its fields (after the sanitize rules), and its raw becomes the JSON
// text (prefix and surrounding
//   whitespace removed), so that a sink writing raw bytes writes clean JSON.
// Only parsed events stay in the batch. Values: integers that fit int64 are kInt; other numbers
// kDouble (a number too large for a double is kept as its raw text); true/false kBool; null
// kNull; strings kString; arrays and objects below max_depth kRaw (their JSON text). Repeated keys
// are all kept, in order; lookups (Batch::find) see the first.
//
// Memory: strings and keys without escapes are views into the event's raw bytes; unescaped
// strings and dotted keys are written to the batch arena. Input raw bytes must lie in a buffer
// of the batch (its arena, or a buffer it keeps alive), whose padding lets simdjson read them in
// place.
//
// The flat reader: a record without escapes and without objects to flatten into dotted keys
// (arrays, and objects kept whole or not kept, are fine) is read by hand in one pass, validated
// as it goes, counted as `flat`. It declines anything else, which then goes the simdjson way;
// what it accepts it reads to the same fields. A batch's records go to the flat reader until one
// it declines turns out valid; the rest of that batch goes the simdjson way.
//
// Document streams: records that lie one after another in one buffer with only whitespace between
// them (the lines of a file source's chunk) are read as one simdjson document stream, one stage-1
// pass for all of them, counted as `streamed`. Each document is checked to be exactly its
// record; at the first record the stream cannot take (malformed, torn, not an object, two
// documents on a line) that record and the rest of the batch are parsed one by one, so results
// never depend on how records were laid out. A stream's last record is parsed alone: a stream
// checks nothing after its last document.
//
// Threading: one instance per worker, used by one thread at a time (it owns a simdjson parser).
// parse() never throws for bad input.
class JsonParser final : public Parser {
 public:
  // flat_reader: false reads every record the simdjson way (the tests compare the two).
  JsonParser(const Options& options, Diagnostics& diag, bool flat_reader = true);
  ~JsonParser() override;

  bool start(Context& ctx) override;
  void parse(Context& ctx, Batch& batch) override;

 private:
  enum class TimeFormat { kSeconds, kMillis, kMicros, kNanos, kRfc3339 };
  class Document;  // the simdjson walk, kept out of this header

  void bind_counters(Context& ctx);
  bool event_time(const Batch& batch, const Event& event, int64_t& ns) const;
  void report_errors(Context& ctx, uint64_t errors, const std::string& last_reason);

  bool flat_reader_ = true;
  std::string strip_prefix_;
  bool dead_letter_ = false;
  bool reject_dead_letter_ = false;
  std::string time_field_;
  TimeFormat time_format_ = TimeFormat::kMillis;
  int max_depth_ = 8;
  Sanitizer sanitizer_;

  std::unique_ptr<Document> document_;
  std::vector<char> keep_;               // per event of the current batch: parsed or not
  std::vector<std::string_view> texts_;  // per event of the current batch: its JSON text
  size_t fields_per_event_ = 8;  // from the last batch, to size the next one's field storage

  Counter* parsed_ = nullptr;
  Counter* errors_ = nullptr;
  Counter* skipped_ = nullptr;
  Counter* time_missing_ = nullptr;
  Counter* rejected_ = nullptr;
  Counter* streamed_ = nullptr;  // records read from a document stream (see parse())
  Counter* flat_ = nullptr;      // records read by the flat reader

  uint64_t unreported_errors_ = 0;  // errors are logged at most every 10 s
  int64_t last_report_ns_ = 0;
  bool reported_ = false;
};

}  // namespace ingestd::plugins

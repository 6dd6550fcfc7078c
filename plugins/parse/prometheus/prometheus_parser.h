// parse/prometheus: Prometheus text exposition bodies -> one event per sample, or per body.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "exposition.h"
#include "ingestd/component.h"
#include "ingestd/plugin.h"
#include "ingestd/schema.h"

namespace ingestd::plugins {

inline constexpr char kPrometheusParserDoc[] =
    "Parses each record as one Prometheus text exposition body (version 0.0.4, what a /metrics "
    "endpoint answers) into one event per sample (name, labels, value, timestamp, type), or into "
    "one event per body holding all its samples. Invalid lines are counted, dropped or "
    "dead-lettered with their line number; the other lines of the body are still parsed.";

inline constexpr OptionSpec kPrometheusParserOptions[] = {
    {.name = "per",
     .type = OptionType::kEnum,
     .default_value = "sample",
     .choices = "sample|scrape",
     .doc = "`sample`: one event per sample line, with the fields name, the labels, value, "
            "timestamp (when the line has one) and type, its raw bytes the line. `scrape`: one "
            "event per input record, its raw bytes the body, with the fields samples (a JSON "
            "array of {name, type, labels, value, timestamp} objects) and sample_count."},
    {.name = "labels",
     .type = OptionType::kEnum,
     .default_value = "flat",
     .choices = "flat|nested",
     .doc = "With `per: sample`: `flat` makes each label a field of its own name (a label whose "
            "name is taken by another field of the event, such as `name`, `value` or a field "
            "the source set, becomes `exported_<name>`); `nested` puts them under `labels.` "
            "(`labels.job`)."},
    {.name = "help",
     .type = OptionType::kBool,
     .default_value = "false",
     .doc = "Add the metric's HELP text as the field `help` (`per: sample`) or the member `help` "
            "(`per: scrape`) when the body has one."},
    {.name = "on_error",
     .type = OptionType::kEnum,
     .default_value = "drop",
     .choices = "drop|dead_letter",
     .doc = "What happens to an invalid line (bad syntax, a second HELP or TYPE for a metric, a "
            "TYPE after the metric's samples, a histogram bucket without `le`, a summary "
            "quantile without `quantile`): `drop` counts it as `errors`; `dead_letter` also "
            "writes the line, with `line N: reason`, to the component's dead-letter file. The "
            "other lines of the body are parsed either way."},
};

// Turns each event's raw bytes, one exposition body, into events, in place.
//
// Contract:
// - Input: a record is a whole body (what one scrape returns). Lines are split at '\n'; see
//   prometheus::LineParser for the grammar. Each input record is replaced by its output events
//   (`per: sample`: one per valid sample line, in order; `per: scrape`: exactly one); the fields
//   a source attached to the record (e.g. the target's url) follow each output event's own.
// - Families: `# TYPE x histogram` gives x_bucket, x_sum and x_count that type, `summary` gives
//   it to x, x_sum and x_count; a sample without a TYPE is `untyped`. A TYPE or HELP is valid
//   for the rest of its body only.
// - Event time: the sample's timestamp (ms) when it has one, else the input record's time (the
//   scrape time from source/prometheus_scrape). Values are doubles (NaN and infinities included;
//   a JSON writer shows those as null, the `samples` array of `per: scrape` as the strings
//   "NaN", "+Inf" and "-Inf").
// - Errors: an invalid line is counted in `errors`, dead-lettered (with `line N: reason`) when
//   on_error is dead_letter, logged at most every 10 s, and skipped; it never ends the body. When
//   the dead-letter file cannot take it the batch's acks are failed.
// - Memory: names, label values without escapes and raw bytes are views into the body; unescaped
//   values, `labels.` keys (one per distinct label name per batch) and the `samples` JSON are
//   written to the batch arena. Scratch buffers are kept across batches: a warmed-up parser makes
//   no heap allocation per sample.
// - Threading: one instance per worker, used by one thread at a time. parse() never throws for
//   bad input.
// Counters: records (bodies), samples (valid sample lines), errors (invalid lines).
class PrometheusParser final : public Parser {
 public:
  PrometheusParser(const Options& options, Diagnostics& diag);

  bool start(Context& ctx) override;
  void parse(Context& ctx, Batch& batch) override;

 private:
  struct Family {
    std::string_view name;
    prometheus::MetricType type = prometheus::MetricType::kUntyped;
    bool typed = false;          // a TYPE line was seen
    bool has_help = false;       // a HELP line was seen
    bool has_samples = false;    // a sample was attributed to it (a later TYPE is an error)
    std::string_view help;       // as written
    std::string_view help_text;  // unescaped (in the arena), once needed
  };
  // What a sample line belongs to.
  struct Resolved {
    Family* family = nullptr;  // nullptr: untyped, no HELP
    enum class Role : uint8_t { kPlain, kBucket, kSum, kCount } role = Role::kPlain;
  };

  void bind_counters(Context& ctx);
  void parse_record(Context& ctx, Batch& batch, const Event& record);
  Family& family(std::string_view name);
  Family* find(std::string_view name);
  Resolved resolve(std::string_view name);
  // nullptr when the current sample fits its family, else why not.
  const char* check_sample(const Resolved& r);
  void emit_sample(Batch& batch, const Event& record, std::string_view line,
                   const prometheus::Line& sample, const Resolved& r);
  void append_json_sample(Batch& batch, const prometheus::Line& sample, const Resolved& r);
  std::string_view label_value(Batch& batch, const prometheus::Label& label);
  std::string_view label_key(Batch& batch, std::string_view name);
  std::string_view help_of(Batch& batch, Family* family);
  void fail(Context& ctx, Batch& batch, std::string_view line, size_t line_no,
            std::string_view reason);
  void report_errors(Context& ctx);

  bool per_scrape_ = false;
  bool nested_ = false;
  bool help_ = false;
  bool dead_letter_ = false;

  prometheus::LineParser lines_;
  // Per body: the families (names are views into the body), their index by name, and the last
  // one a sample was found in (samples of a family come together).
  std::vector<Family> families_;
  absl::flat_hash_map<std::string_view, uint32_t> family_index_;
  uint32_t last_family_ = 0;  // an index into families_, valid when families_ is not empty
  // Per batch: the key of each label name (`labels.x`, `exported_x`), in the arena.
  absl::flat_hash_map<std::string_view, std::string_view> keys_;
  std::vector<Field> record_fields_;  // the fields the source gave the current record
  std::vector<Event> records_;        // the input events of the current batch
  std::string json_;                  // per: scrape, the samples array being built
  std::string unescaped_;

  Counter* records_count_ = nullptr;
  Counter* samples_ = nullptr;
  Counter* errors_ = nullptr;
  uint64_t batch_samples_ = 0;
  uint64_t batch_errors_ = 0;
  std::string last_reason_;
  uint64_t unreported_errors_ = 0;  // errors are logged at most every 10 s
  int64_t last_report_ns_ = 0;
  bool reported_ = false;
};

}  // namespace ingestd::plugins

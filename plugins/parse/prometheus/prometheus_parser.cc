#include "prometheus_parser.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "ingestd/json.h"

namespace ingestd::plugins {

using prometheus::Label;
using prometheus::Line;
using prometheus::MetricType;

namespace {

constexpr int64_t kReportIntervalNs = 10'000'000'000;
constexpr int64_t kNsPerMs = 1'000'000;
constexpr std::string_view kOwnKeys[] = {"name", "value", "timestamp", "type"};

bool ends_with(std::string_view s, std::string_view suffix, std::string_view& base) {
  if (s.size() <= suffix.size() || !s.ends_with(suffix)) return false;
  base = s.substr(0, s.size() - suffix.size());
  return true;
}

const Label* find_label(const std::vector<Label>& labels, std::string_view name) {
  for (const Label& l : labels)
    if (l.name == name) return &l;
  return nullptr;
}

// A non-finite value as the text format writes it, for the JSON of `per: scrape`.
const char* special_text(double v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "+Inf" : "-Inf";
}

}  // namespace

PrometheusParser::PrometheusParser(const Options& options, Diagnostics&)
    : per_scrape_(options.get_string("per", "sample") == "scrape"),
      nested_(options.get_string("labels", "flat") == "nested"),
      help_(options.get_bool("help")),
      dead_letter_(options.get_string("on_error", "drop") == "dead_letter") {}

bool PrometheusParser::start(Context& ctx) {
  bind_counters(ctx);
  return true;
}

void PrometheusParser::bind_counters(Context& ctx) {
  records_count_ = &ctx.counter("records");
  samples_ = &ctx.counter("samples");
  errors_ = &ctx.counter("errors");
}

void PrometheusParser::parse(Context& ctx, Batch& batch) {
  if (!samples_) bind_counters(ctx);
  const size_t inputs = batch.size();
  records_.assign(batch.events().begin(), batch.events().end());
  size_t lines = 0;
  for (const Event& e : records_) lines += std::count(e.raw.begin(), e.raw.end(), '\n') + 1;
  if (per_scrape_)
    batch.reserve(inputs * 2, 0);
  else
    batch.reserve(inputs + lines, lines * 8);
  keys_.clear();
  batch_samples_ = batch_errors_ = 0;
  for (const Event& record : records_) parse_record(ctx, batch, record);
  size_t index = 0;
  batch.retain([&](const Event&) { return index++ >= inputs; });

  records_count_->add(inputs);
  if (batch_samples_) samples_->add(batch_samples_);
  if (batch_errors_) {
    errors_->add(batch_errors_);
    report_errors(ctx);
  }
}

void PrometheusParser::parse_record(Context& ctx, Batch& batch, const Event& record) {
  auto own = batch.fields(record);
  record_fields_.assign(own.begin(), own.end());
  families_.clear();
  family_index_.clear();
  json_.clear();
  uint64_t samples = 0;

  std::string_view body = record.raw;
  size_t line_no = 0;
  while (!body.empty()) {
    size_t end = body.find('\n');
    std::string_view text = body.substr(0, end);
    body.remove_prefix(end == std::string_view::npos ? body.size() : end + 1);
    ++line_no;
    Line line = lines_.parse(text);
    switch (line.kind) {
      case Line::Kind::kBlank:
      case Line::Kind::kComment:
        break;
      case Line::Kind::kError:
        fail(ctx, batch, text, line_no, line.error);
        break;
      case Line::Kind::kHelp: {
        Family& f = family(line.name);
        if (f.has_help) {
          fail(ctx, batch, text, line_no, fmt::format("second HELP line for {}", line.name));
          break;
        }
        f.has_help = true;
        f.help = line.help;
        break;
      }
      case Line::Kind::kType: {
        Family& f = family(line.name);
        if (f.typed) {
          fail(ctx, batch, text, line_no, fmt::format("second TYPE line for {}", line.name));
        } else if (f.has_samples) {
          fail(ctx, batch, text, line_no,
               fmt::format("TYPE line for {} after its samples", line.name));
        } else {
          f.typed = true;
          f.type = line.type;
        }
        break;
      }
      case Line::Kind::kSample: {
        int64_t unused_ns;
        if (line.has_timestamp && __builtin_mul_overflow(line.timestamp_ms, kNsPerMs, &unused_ns)) {
          fail(ctx, batch, text, line_no, "timestamp out of range");
          break;
        }
        Resolved r = resolve(line.name);
        if (const char* why = check_sample(r)) {
          fail(ctx, batch, text, line_no, why);
          break;
        }
        if (r.family) r.family->has_samples = true;
        ++samples;
        if (per_scrape_)
          append_json_sample(batch, line, r);
        else
          emit_sample(batch, record, text, line, r);
        break;
      }
    }
  }
  batch_samples_ += samples;
  if (!per_scrape_) return;

  std::string_view samples_json;
  if (json_.empty()) {
    samples_json = "[]";
  } else {
    json_ += ']';
    json_[0] = '[';  // append_json_sample starts every element with ','
    samples_json = batch.copy_unpadded(json_);
  }
  Event& e = batch.add(record.raw, record.time_ns);
  batch.append_field(e, "samples", Value::raw(samples_json));
  batch.append_field(e, "sample_count", Value::integer(static_cast<int64_t>(samples)));
  for (const Field& f : record_fields_) batch.append_field(e, f.key, f.value);
}

PrometheusParser::Family* PrometheusParser::find(std::string_view name) {
  if (!families_.empty() && families_[last_family_].name == name) return &families_[last_family_];
  auto it = family_index_.find(name);
  if (it == family_index_.end()) return nullptr;
  last_family_ = it->second;
  return &families_[it->second];
}

PrometheusParser::Family& PrometheusParser::family(std::string_view name) {
  if (Family* f = find(name)) return *f;
  family_index_.emplace(name, static_cast<uint32_t>(families_.size()));
  last_family_ = static_cast<uint32_t>(families_.size());
  Family& f = families_.emplace_back();
  f.name = name;
  return f;
}

PrometheusParser::Resolved PrometheusParser::resolve(std::string_view name) {
  Resolved r;
  Family* exact = find(name);
  if (exact && exact->typed) {
    r.family = exact;
    return r;
  }
  static constexpr std::pair<std::string_view, Resolved::Role> kSuffixes[] = {
      {"_bucket", Resolved::Role::kBucket},
      {"_sum", Resolved::Role::kSum},
      {"_count", Resolved::Role::kCount},
  };
  for (const auto& [suffix, role] : kSuffixes) {
    std::string_view base;
    if (!ends_with(name, suffix, base)) continue;
    Family* f = find(base);
    if (f && (f->type == MetricType::kHistogram ||
              (f->type == MetricType::kSummary && role != Resolved::Role::kBucket))) {
      r.family = f;
      r.role = role;
      return r;
    }
  }
  // A sample without a TYPE: remember it, so that a TYPE line after it is an error.
  r.family = exact ? exact : &family(name);
  return r;
}

const char* PrometheusParser::check_sample(const Resolved& r) {
  const auto& labels = lines_.labels();
  double unused;
  if (r.role == Resolved::Role::kBucket) {
    const Label* le = find_label(labels, "le");
    if (!le) return "histogram bucket without an le label";
    if (le->escaped || !prometheus::parse_value(le->value, unused))
      return "histogram bucket whose le label is not a number";
  } else if (r.role == Resolved::Role::kPlain && r.family &&
             r.family->type == MetricType::kSummary) {
    const Label* q = find_label(labels, "quantile");
    if (!q) return "summary quantile without a quantile label";
    if (q->escaped || !prometheus::parse_value(q->value, unused))
      return "summary quantile whose quantile label is not a number";
  }
  return nullptr;
}

std::string_view PrometheusParser::label_value(Batch& batch, const Label& label) {
  if (!label.escaped) return label.value;
  char* p = batch.allocate_unpadded(label.value.size());
  return {p, prometheus::unescape_label(label.value, p)};
}

// The field key of a label: `labels.<name>` when nested; flat, the name itself unless the event
// has a field of that name already (its own, or one the source gave the record).
std::string_view PrometheusParser::label_key(Batch& batch, std::string_view name) {
  if (!nested_) {
    bool clash = std::find(std::begin(kOwnKeys), std::end(kOwnKeys), name) != std::end(kOwnKeys) ||
                 (help_ && name == "help") ||
                 std::any_of(record_fields_.begin(), record_fields_.end(),
                             [&](const Field& f) { return f.key == name; });
    if (!clash) return name;
  }
  if (auto it = keys_.find(name); it != keys_.end()) return it->second;
  std::string_view prefix = nested_ ? "labels." : "exported_";
  char* p = batch.allocate_unpadded(prefix.size() + name.size());
  std::memcpy(p, prefix.data(), prefix.size());
  std::memcpy(p + prefix.size(), name.data(), name.size());
  std::string_view key(p, prefix.size() + name.size());
  keys_.emplace(name, key);
  return key;
}

std::string_view PrometheusParser::help_of(Batch& batch, Family* family) {
  if (!family || !family->has_help) return {};
  if (family->help_text.data() == nullptr) {
    if (family->help.find('\\') == std::string_view::npos) {
      family->help_text = family->help;
    } else {
      char* p = batch.allocate_unpadded(family->help.size());
      family->help_text = {p, prometheus::unescape_help(family->help, p)};
    }
  }
  return family->help_text;
}

void PrometheusParser::emit_sample(Batch& batch, const Event& record, std::string_view line,
                                   const Line& sample, const Resolved& r) {
  int64_t time_ns = sample.has_timestamp ? sample.timestamp_ms * kNsPerMs : record.time_ns;
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
    line.remove_suffix(1);
  Event& e = batch.add(line, time_ns);
  batch.append_field(e, "name", Value::string(sample.name));
  for (const Label& l : lines_.labels())
    batch.append_field(e, label_key(batch, l.name), Value::string(label_value(batch, l)));
  batch.append_field(e, "value", Value::number(sample.value));
  if (sample.has_timestamp) batch.append_field(e, "timestamp", Value::integer(sample.timestamp_ms));
  MetricType type = r.family ? r.family->type : MetricType::kUntyped;
  batch.append_field(e, "type", Value::string(prometheus::type_name(type)));
  if (help_) {
    std::string_view help = help_of(batch, r.family);
    if (help.data()) batch.append_field(e, "help", Value::string(help));
  }
  for (const Field& f : record_fields_) batch.append_field(e, f.key, f.value);
}

void PrometheusParser::append_json_sample(Batch& batch, const Line& sample, const Resolved& r) {
  json_ += ",{\"name\":";
  json::append_string(json_, sample.name);
  MetricType type = r.family ? r.family->type : MetricType::kUntyped;
  json_ += ",\"type\":\"";
  json_ += prometheus::type_name(type);
  json_ += "\",\"labels\":{";
  bool first = true;
  for (const Label& l : lines_.labels()) {
    if (!first) json_ += ',';
    first = false;
    json::append_string(json_, l.name);
    json_ += ':';
    if (l.escaped) {
      unescaped_.resize(l.value.size());
      unescaped_.resize(prometheus::unescape_label(l.value, unescaped_.data()));
      json::append_string(json_, unescaped_);
    } else {
      json::append_string(json_, l.value);
    }
  }
  json_ += "},\"value\":";
  if (std::isfinite(sample.value)) {
    json::append_value(json_, Value::number(sample.value));
  } else {
    json_ += '"';
    json_ += special_text(sample.value);
    json_ += '"';
  }
  if (sample.has_timestamp) {
    json_ += ",\"timestamp\":";
    json::append_value(json_, Value::integer(sample.timestamp_ms));
  }
  if (help_) {
    std::string_view help = help_of(batch, r.family);
    if (help.data()) {
      json_ += ",\"help\":";
      json::append_string(json_, help);
    }
  }
  json_ += '}';
}

void PrometheusParser::fail(Context& ctx, Batch& batch, std::string_view line, size_t line_no,
                            std::string_view reason) {
  ++batch_errors_;
  std::string text = fmt::format("line {}: {}", line_no, reason);
  if (dead_letter_ && !ctx.dead_letter(line, text))
    batch.resolve_acks(false);  // the line is lost, not set aside
  last_reason_ = std::move(text);
}

void PrometheusParser::report_errors(Context& ctx) {
  unreported_errors_ += batch_errors_;
  int64_t now = ctx.clock().monotonic_ns();
  if (reported_ && now - last_report_ns_ < kReportIntervalNs) return;
  ctx.logf(LogLevel::kWarn, "{} invalid line(s) since the last report; last: {}",
           unreported_errors_, last_reason_);
  unreported_errors_ = 0;
  last_report_ns_ = now;
  reported_ = true;
}

}  // namespace ingestd::plugins

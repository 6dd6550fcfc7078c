#include "admin/exposition.h"

#include <cmath>
#include <map>

#include <fmt/format.h>

namespace ingestd::admin {

namespace {

using runtime::Family;
using runtime::Labels;
using runtime::MetricType;
using runtime::Sample;

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    out += std::to_string(static_cast<int64_t>(v));
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

void append_help(std::string& out, std::string_view help, Format format) {
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && format == Format::kOpenMetrics)
      out += "\\\"";
    else
      out += c;
  }
}

void append_labels(std::string& out, const Labels& labels, const char* extra_name = nullptr,
                   std::string_view extra_value = {}) {
  if (labels.empty() && !extra_name) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    append_label_value(out, value);
    out += '"';
  }
  if (extra_name) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    append_label_value(out, extra_value);
    out += '"';
  }
  out += '}';
}

void append_sample(std::string& out, const std::string& name, std::string_view suffix,
                   const Labels& labels, double value, const char* extra_name = nullptr,
                   std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  append_labels(out, labels, extra_name, extra_value);
  out += ' ';
  append_number(out, value);
  out += '\n';
}

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

void append_family(std::string& out, const Family& f, const std::vector<const Sample*>& samples,
                   Format format) {
  // 0.0.4 names a counter by its samples' name; OpenMetrics by the family's, without _total.
  const bool counter = f.type == MetricType::kCounter;
  std::string declared = f.name;
  if (counter && format == Format::kText) declared += "_total";
  out += "# HELP ";
  out += declared;
  out += ' ';
  append_help(out, f.help, format);
  out += "\n# TYPE ";
  out += declared;
  out += ' ';
  out += type_name(f.type);
  out += '\n';
  for (const Sample* s : samples) {
    switch (f.type) {
      case MetricType::kCounter:
        append_sample(out, f.name, "_total", s->labels, s->value);
        break;
      case MetricType::kGauge:
        append_sample(out, f.name, "", s->labels, s->value);
        break;
      case MetricType::kHistogram: {
        const auto& h = s->histogram;
        uint64_t cumulative = 0;
        for (size_t i = 0; i < h.counts.size(); ++i) {
          cumulative += h.counts[i];
          std::string le;
          if (i < h.bounds.size())
            append_number(le, h.bounds[i]);
          else
            le = "+Inf";
          append_sample(out, f.name, "_bucket", s->labels, static_cast<double>(cumulative), "le",
                        le);
        }
        // _count is the +Inf bucket: both read from the same loads, so they always agree.
        append_sample(out, f.name, "_sum", s->labels, h.sum);
        append_sample(out, f.name, "_count", s->labels, static_cast<double>(cumulative));
        break;
      }
    }
  }
}

// A well-known runtime counter: its family and, for the merged ones, the extra label.
struct Known {
  std::string_view counter;
  std::string_view family;
  std::string_view label;  // "" for none
  std::string_view value;
};

constexpr Known kKnown[] = {
    {"events_in", "ingestd_component_events_in", "", ""},
    {"events_out", "ingestd_component_events_out", "", ""},
    {"queue_dropped", "ingestd_component_dropped_events", "reason", "queue_full"},
    {"shutdown_dropped", "ingestd_component_dropped_events", "reason", "shutdown"},
    {"unconsumed", "ingestd_component_dropped_events", "reason", "unconsumed"},
    {"spool_dropped", "ingestd_component_dropped_events", "reason", "spool_full"},
    {"failed", "ingestd_component_failed_events", "", ""},
    {"dead_letters", "ingestd_component_dead_letters", "", ""},
    {"dead_letter_lost", "ingestd_component_dead_letters_lost", "", ""},
    {"acks_unresolved", "ingestd_component_acks_unresolved", "", ""},
    {"retries", "ingestd_sink_retries", "", ""},
    {"breaker_opened", "ingestd_sink_breaker_transitions", "to", "open"},
    {"breaker_half_open", "ingestd_sink_breaker_transitions", "to", "half_open"},
    {"breaker_closed", "ingestd_sink_breaker_transitions", "to", "closed"},
    {"spooled", "ingestd_sink_spooled_events", "", ""},
    {"replayed", "ingestd_sink_replayed_events", "", ""},
    {"spool_corrupt", "ingestd_sink_spool_corrupt_records", "", ""},
};

struct FamilyDoc {
  std::string_view name;
  std::string_view help;
};

constexpr FamilyDoc kDocs[] = {
    {"ingestd_component_events_in", "Events a component took from its input queue."},
    {"ingestd_component_events_out",
     "Events a component produced (for sinks: events written, replayed ones included)."},
    {"ingestd_component_dropped_events",
     "Events a component dropped, by reason: queue_full (when_full: drop_newest), shutdown (the "
     "shutdown deadline discarded them), unconsumed (nothing reads the output), spool_full "
     "(when_full: drop_oldest deleted them unsent)."},
    {"ingestd_component_failed_events",
     "Events lost to an error a parser or sink reported (dead-lettered when possible)."},
    {"ingestd_component_dead_letters", "Records written to the component's dead-letter file."},
    {"ingestd_component_dead_letters_lost",
     "Records meant for the dead-letter file that could not be stored."},
    {"ingestd_component_acks_unresolved",
     "Acknowledgement holders dropped without a verdict (counted as failed)."},
    {"ingestd_sink_retries", "Retried sink writes."},
    {"ingestd_sink_breaker_transitions",
     "Transitions of a sink's circuit breaker, by the state it entered."},
    {"ingestd_sink_spooled_events", "Events appended to a sink's disk spool."},
    {"ingestd_sink_replayed_events", "Events delivered from a sink's disk spool."},
    {"ingestd_sink_spool_corrupt_records", "Damaged spool records skipped."},
    {"ingestd_http_source_requests", "Requests answered by an HTTP source, by route and status."},
    {"ingestd_component_stat",
     "Every other counter a component keeps, by name (see docs/operations.md)."},
};

std::string_view help_of(std::string_view family) {
  for (const auto& d : kDocs)
    if (d.name == family) return d.help;
  return "";
}

}  // namespace

Format negotiate(std::string_view accept) {
  return accept.find("application/openmetrics-text") != std::string_view::npos
             ? Format::kOpenMetrics
             : Format::kText;
}

std::string_view content_type(Format format) {
  return format == Format::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

std::vector<Family> counter_families(const std::vector<std::pair<std::string, uint64_t>>& named) {
  std::map<std::string, Family, std::less<>> by_name;
  auto add = [&](std::string_view family, Labels labels, uint64_t value) {
    auto it = by_name.find(family);
    if (it == by_name.end()) {
      Family f;
      f.name = std::string(family);
      f.help = std::string(help_of(family));
      f.type = MetricType::kCounter;
      it = by_name.emplace(f.name, std::move(f)).first;
    }
    it->second.samples.push_back({std::move(labels), static_cast<double>(value), {}});
  };
  for (const auto& [full, value] : named) {
    size_t dot = full.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == full.size()) {
      add("ingestd_component_stat", {{"component", ""}, {"name", full}}, value);
      continue;
    }
    std::string component = full.substr(0, dot);
    std::string_view name = std::string_view(full).substr(dot + 1);
    const Known* known = nullptr;
    for (const auto& k : kKnown)
      if (k.counter == name) known = &k;
    if (known) {
      bool sink = known->family.starts_with("ingestd_sink_");
      Labels labels = {{sink ? "sink" : "component", component}};
      if (!known->label.empty())
        labels.emplace_back(std::string(known->label), std::string(known->value));
      add(known->family, std::move(labels), value);
      continue;
    }
    if (name.starts_with("requests.")) {
      std::string_view rest = name.substr(9);
      size_t last = rest.rfind('.');
      if (last != std::string_view::npos && last > 0 && last + 1 < rest.size()) {
        add("ingestd_http_source_requests",
            {{"component", component},
             {"route", std::string(rest.substr(0, last))},
             {"status", std::string(rest.substr(last + 1))}},
            value);
        continue;
      }
    }
    add("ingestd_component_stat", {{"component", component}, {"name", std::string(name)}}, value);
  }
  std::vector<Family> out;
  for (auto& [name, f] : by_name) out.push_back(std::move(f));
  return out;
}

std::string render(const std::vector<Family>& families, Format format) {
  // Families of one name are merged; the order is that of first appearance.
  std::vector<const Family*> order;
  std::map<std::string_view, std::vector<const Sample*>> samples;
  for (const Family& f : families) {
    auto [it, added] = samples.try_emplace(f.name);
    if (added) order.push_back(&f);
    for (const Sample& s : f.samples) it->second.push_back(&s);
  }
  std::string out;
  out.reserve(256 * order.size());
  for (const Family* f : order) {
    const auto& list = samples[f->name];
    if (list.empty()) continue;
    append_family(out, *f, list, format);
  }
  if (format == Format::kOpenMetrics) out += "# EOF\n";
  return out;
}

}  // namespace ingestd::admin

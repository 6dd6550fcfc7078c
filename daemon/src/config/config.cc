#include "config/config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include <sched.h>
#include <span>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "config/options.h"
#include "config/syntax.h"

namespace ingestd::config {
namespace detail {
namespace {

// The core's own keys, validated by the same code as plugin options. No defaults here: the
// model's structs (Pipeline, QueueConfig, BatchLimits) hold them, and only given keys override.
constexpr OptionSpec kLogSpec[] = {
    {.name = "level", .type = OptionType::kEnum, .choices = "trace|debug|info|warning|warn|error"},
    {.name = "target", .type = OptionType::kEnum, .choices = "auto|stderr|journald"}};
constexpr OptionSpec kBatchSpec[] = {{.name = "max_events", .type = OptionType::kInt, .min = "1"},
                                     {.name = "max_bytes", .type = OptionType::kSize, .min = "1"},
                                     {.name = "linger", .type = OptionType::kDuration}};
constexpr OptionSpec kTopSpec[] = {
    {.name = "data_dir", .type = OptionType::kString},
    {.name = "log", .type = OptionType::kObject, .children = kLogSpec, .child_count = 2},
    {.name = "plugin_dirs", .type = OptionType::kStringList},
    {.name = "shutdown_timeout", .type = OptionType::kDuration},
    {.name = "io_threads", .type = OptionType::kInt, .min = "1", .max = "1024"},
    {.name = "batch", .type = OptionType::kObject, .children = kBatchSpec, .child_count = 3}};
constexpr OptionSpec kAdminSpec[] = {
    {.name = "listen", .type = OptionType::kString},
    {.name = "token_file", .type = OptionType::kString},
    {.name = "unhealthy_after", .type = OptionType::kDuration, .min = "1ms"}};
constexpr OptionSpec kQueueChildren[] = {
    {.name = "max_batches", .type = OptionType::kInt, .min = "1"},
    {.name = "max_bytes", .type = OptionType::kSize, .min = "1"},
    {.name = "when_full", .type = OptionType::kEnum, .choices = "block|drop_newest"}};
constexpr OptionSpec kQueueSpec = {
    .name = "queue", .type = OptionType::kObject, .children = kQueueChildren, .child_count = 3};
constexpr OptionSpec kWorkersSpec = {
    .name = "workers", .type = OptionType::kInt, .min = "1", .max = "64"};

constexpr OptionSpec kRetryChildren[] = {
    {.name = "initial", .type = OptionType::kDuration, .min = "1ms"},
    {.name = "max", .type = OptionType::kDuration, .min = "1ms"},
    {.name = "multiplier", .type = OptionType::kDouble, .min = "1", .max = "100"},
    {.name = "jitter", .type = OptionType::kEnum, .choices = "full|none"},
    {.name = "max_attempts", .type = OptionType::kInt, .min = "0"},
    {.name = "max_elapsed", .type = OptionType::kDuration}};
constexpr OptionSpec kRetrySpec = {
    .name = "retry", .type = OptionType::kObject, .children = kRetryChildren, .child_count = 6};
constexpr OptionSpec kBreakerChildren[] = {
    {.name = "failures", .type = OptionType::kInt, .min = "0"},
    {.name = "failure_ratio", .type = OptionType::kDouble, .min = "0", .max = "1"},
    {.name = "window", .type = OptionType::kDuration, .min = "1ms"},
    {.name = "open_for", .type = OptionType::kDuration, .min = "1ms"},
    {.name = "half_open_probes", .type = OptionType::kInt, .min = "1"}};
constexpr OptionSpec kBreakerSpec = {
    .name = "breaker", .type = OptionType::kObject, .children = kBreakerChildren, .child_count = 5};

constexpr OptionSpec kSpoolChildren[] = {
    {.name = "max_size", .type = OptionType::kSize, .min = "64KiB"},
    {.name = "segment_size", .type = OptionType::kSize, .min = "64KiB"},
    {.name = "fsync", .type = OptionType::kEnum, .choices = "always|interval|never"},
    {.name = "fsync_interval", .type = OptionType::kDuration, .min = "1ms"},
    {.name = "when_full", .type = OptionType::kEnum, .choices = "block|drop_oldest"},
    {.name = "replay", .type = OptionType::kEnum, .choices = "ordered|backfill"},
    {.name = "replay_rate", .type = OptionType::kInt, .min = "1"}};
constexpr OptionSpec kSpoolSpec = {
    .name = "spool", .type = OptionType::kObject, .children = kSpoolChildren, .child_count = 7};

constexpr Kind kKinds[] = {Kind::kSource, Kind::kParser, Kind::kAggregator, Kind::kSink};

// A component while the file is being checked: its model plus what messages need.
struct Loaded {
  ComponentConfig config;
  YAML::Mark key_mark;
  std::string prefix;  // "sinks.out (file): "
  std::vector<std::pair<std::string, YAML::Mark>> inputs;
};

bool valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string canonical(const OptionValue& value) {
  switch (value.type) {
    case OptionType::kBool:
      return value.b ? "true" : "false";
    case OptionType::kInt:
    case OptionType::kDuration:
    case OptionType::kSize:
      return std::to_string(value.i);
    case OptionType::kDouble:
      return fmt::format("{}", value.d);
    case OptionType::kString:
    case OptionType::kEnum:
      return quoted(value.s);
    case OptionType::kStringList: {
      std::vector<std::string> items;
      for (const auto& s : value.list) items.push_back(quoted(s));
      return fmt::format("[{}]", fmt::join(items, ","));
    }
    case OptionType::kStringMap:
    case OptionType::kObject: {
      // Object keys are sorted; a string map keeps the order written, which may matter to the
      // plugin (the order of metrics in its output, say).
      std::vector<std::string> items;
      for (const auto& [key, entry] : value.entries)
        items.push_back(fmt::format("{}:{}", quoted(key), canonical(entry)));
      if (value.type == OptionType::kObject) std::sort(items.begin(), items.end());
      return fmt::format("{{{}}}", fmt::join(items, ","));
    }
    case OptionType::kObjectList: {
      // The items' order is the order the plugin applies them in.
      std::vector<std::string> items;
      for (const auto& [index, item] : value.entries) items.push_back(canonical(item));
      return fmt::format("[{}]", fmt::join(items, ","));
    }
  }
  return {};
}

// Inputs are edges, not part of the component: see ComponentConfig::fingerprint.
std::string fingerprint(const ComponentConfig& c) {
  std::string text = fmt::format(
      "{} {};workers={};queue={{max_batches={},max_bytes={},when_full={}}};options={}",
      kind_name(c.kind), quoted(c.type), c.workers, c.queue.max_batches, c.queue.max_bytes,
      c.queue.when_full == WhenFull::kBlock ? "block" : "drop_newest", canonical(c.options));
  if (c.kind == Kind::kSink) {
    const RetryConfig& r = c.retry;
    const BreakerConfig& b = c.breaker;
    text += fmt::format(
        ";retry={{initial={},max={},multiplier={},jitter={},max_attempts={},max_elapsed={}}}"
        ";breaker={{failures={},failure_ratio={},window={},open_for={},half_open_probes={}}}",
        r.initial_ns, r.max_ns, r.multiplier, r.jitter == Jitter::kFull ? "full" : "none",
        r.max_attempts, r.max_elapsed_ns, b.failures, b.failure_ratio, b.window_ns, b.open_for_ns,
        b.half_open_probes);
    const SpoolConfig& s = c.spool;
    if (!s.enabled) {
      text += ";spool=off";
    } else {
      text += fmt::format(
          ";spool={{max_size={},segment_size={},fsync={},fsync_interval={},when_full={},"
          "replay={},replay_rate={}}}",
          s.max_size, s.segment_size, static_cast<int>(s.fsync), s.fsync_interval_ns,
          static_cast<int>(s.when_full), static_cast<int>(s.replay), s.replay_rate);
    }
  }
  return text;
}

void read_retry(const OptionValue& value, RetryConfig& retry) {
  if (auto* v = value.find("initial")) retry.initial_ns = v->i;
  if (auto* v = value.find("max")) retry.max_ns = v->i;
  if (auto* v = value.find("multiplier")) retry.multiplier = v->d;
  if (auto* v = value.find("jitter")) retry.jitter = v->s == "full" ? Jitter::kFull : Jitter::kNone;
  if (auto* v = value.find("max_attempts")) retry.max_attempts = static_cast<uint64_t>(v->i);
  if (auto* v = value.find("max_elapsed")) retry.max_elapsed_ns = v->i;
}

void read_breaker(const OptionValue& value, BreakerConfig& breaker) {
  if (auto* v = value.find("failures")) breaker.failures = static_cast<uint64_t>(v->i);
  if (auto* v = value.find("failure_ratio")) breaker.failure_ratio = v->d;
  if (auto* v = value.find("window")) breaker.window_ns = v->i;
  if (auto* v = value.find("open_for")) breaker.open_for_ns = v->i;
  if (auto* v = value.find("half_open_probes"))
    breaker.half_open_probes = static_cast<uint64_t>(v->i);
}

void read_spool(const OptionValue& value, SpoolConfig& spool) {
  using S = SpoolConfig;
  if (auto* v = value.find("max_size")) spool.max_size = static_cast<uint64_t>(v->i);
  if (auto* v = value.find("segment_size")) spool.segment_size = static_cast<uint64_t>(v->i);
  if (auto* v = value.find("fsync"))
    spool.fsync = v->s == "always"     ? S::Fsync::kAlways
                  : v->s == "interval" ? S::Fsync::kInterval
                                       : S::Fsync::kNever;
  if (auto* v = value.find("fsync_interval")) spool.fsync_interval_ns = v->i;
  if (auto* v = value.find("when_full"))
    spool.when_full = v->s == "block" ? S::SpoolFull::kBlock : S::SpoolFull::kDropOldest;
  if (auto* v = value.find("replay"))
    spool.replay = v->s == "ordered" ? S::Replay::kOrdered : S::Replay::kBackfill;
  if (auto* v = value.find("replay_rate")) spool.replay_rate = static_cast<uint64_t>(v->i);
}

// The option at a dotted path ("window.late"), or null.
const OptionValue* option_at(const OptionValue& options, std::string_view path) {
  const OptionValue* v = &options;
  while (v) {
    size_t dot = path.find('.');
    v = v->find(path.substr(0, dot));
    if (dot == std::string_view::npos) break;
    path.remove_prefix(dot + 1);
  }
  return v;
}

// load() for one document, reporting into `reporter`.
class Loader {
 public:
  Loader(Reporter& reporter, const Catalog& catalog, const Environment& env, Pipeline& pipeline)
      : reporter_(reporter), catalog_(catalog), env_(env), pipeline_(pipeline) {}

  void load(const YAML::Node& root) {
    if (!root.IsMap()) {
      reporter_.error(root.Mark(), fmt::format("expected a mapping with sources and sinks, got {}",
                                               describe(root)));
      return;
    }
    std::vector<std::string> sections;
    for (Kind kind : kKinds) sections.emplace_back(section_name(kind));
    std::vector<std::string> own = sections;
    own.emplace_back("admin");
    std::vector<MapEntry> entries = map_entries(root, reporter_, "");
    ValueReader reader(reporter_, &env_, "", nullptr, "key");
    apply_settings(reader.object(entries, kTopSpec, "", root.Mark(), own, own));
    for (const MapEntry& entry : entries) {
      for (Kind kind : kKinds)
        if (entry.key == section_name(kind)) load_section(entry, kind);
      if (entry.key == "admin") load_admin(entry);
    }
    check_graph();
    for (Loaded& c : loaded_) {
      c.config.fingerprint = fingerprint(c.config);
      pipeline_.components.push_back(std::move(c.config));
    }
  }

 private:
  void apply_settings(const OptionValue& settings) {
    if (auto* v = settings.find("data_dir")) pipeline_.data_dir = v->s;
    if (auto* v = settings.get_object("log").find("level")) pipeline_.log_level = v->s;
    if (auto* v = settings.get_object("log").find("target")) pipeline_.log_target = v->s;
    if (auto* v = settings.find("plugin_dirs")) pipeline_.plugin_dirs = v->list;
    if (auto* v = settings.find("shutdown_timeout")) pipeline_.shutdown_timeout_ns = v->i;
    if (auto* v = settings.find("io_threads")) pipeline_.io_threads = static_cast<int>(v->i);
    const OptionValue& batch = settings.get_object("batch");
    if (auto* v = batch.find("max_events")) pipeline_.batch.max_events = static_cast<size_t>(v->i);
    if (auto* v = batch.find("max_bytes")) pipeline_.batch.max_bytes = static_cast<size_t>(v->i);
    if (auto* v = batch.find("linger")) pipeline_.batch.linger_ns = v->i;
  }

  // `admin: false`, `admin: true` or a mapping of kAdminSpec.
  void load_admin(const MapEntry& entry) {
    AdminConfig& admin = pipeline_.admin;
    if (entry.value.IsScalar() &&
        (entry.value.Scalar() == "false" || entry.value.Scalar() == "true")) {
      admin.enabled = entry.value.Scalar() == "true";
      return;
    }
    if (!entry.value.IsMap()) {
      reporter_.error(entry.value_mark(),
                      fmt::format("admin: expected false or a mapping with listen and token_file, "
                                  "got {}",
                                  describe(entry.value)));
      return;
    }
    std::vector<MapEntry> entries = map_entries(entry.value, reporter_, "admin: ");
    ValueReader reader(reporter_, &env_, "admin: ");
    OptionValue v = reader.object(entries, kAdminSpec, "", entry.key_mark());
    if (auto* x = v.find("listen")) admin.listen = x->s;
    if (auto* x = v.find("token_file")) admin.token_file = x->s;
    if (auto* x = v.find("unhealthy_after")) admin.unhealthy_after_ns = x->i;
    YAML::Mark listen_mark = entry.key_mark();
    for (const MapEntry& e : entries)
      if (e.key == "listen") listen_mark = e.value_mark();
    std::string host;
    uint16_t port = 0;
    std::string error;
    if (!parse_listen(admin.listen, host, port, error)) {
      reporter_.error(listen_mark, fmt::format("admin: listen '{}': {}", admin.listen, error));
    } else if (!is_loopback(host) && admin.token_file.empty()) {
      reporter_.error(listen_mark,
                      fmt::format("admin: listen '{}' is not a loopback address: give token_file "
                                  "(a file holding the bearer token clients must send) or listen "
                                  "on 127.0.0.1",
                                  admin.listen));
    }
  }

  void load_section(const MapEntry& section, Kind kind) {
    if (section.value.IsNull()) return;
    if (!section.value.IsMap()) {
      reporter_.error(section.value_mark(),
                      fmt::format("{}: expected a mapping of names to components, got {}",
                                  section.key, describe(section.value)));
      return;
    }
    for (const MapEntry& entry :
         map_entries(section.value, reporter_, fmt::format("{}: ", section.key)))
      load_component(entry, kind);
  }

  void load_component(const MapEntry& entry, Kind kind) {
    Loaded c;
    c.config.valid = false;
    c.config.name = entry.key;
    c.config.kind = kind;
    c.config.pos = reporter_.position(entry.key_mark());
    c.key_mark = entry.key_mark();
    std::string where = fmt::format("{}.{}", section_name(kind), entry.key);
    c.prefix = where + ": ";
    if (!valid_name(entry.key)) {
      reporter_.error(
          entry.key_mark(),
          fmt::format("{}: invalid name '{}': use letters, digits, '_' and '-'", where, entry.key));
    }
    if (!entry.value.IsMap()) {
      reporter_.error(entry.value_mark(),
                      fmt::format("{}: expected a mapping with a 'type', got {}", where,
                                  describe(entry.value)));
      loaded_.push_back(std::move(c));
      return;
    }
    std::vector<MapEntry> fields = map_entries(entry.value, reporter_, c.prefix);
    auto field = [&](std::string_view name) -> const MapEntry* {
      for (const MapEntry& f : fields)
        if (f.key == name) return &f;
      return nullptr;
    };

    const ComponentDescriptor* descriptor = nullptr;
    if (const MapEntry* type = field("type")) {
      descriptor = resolve_type(*type, kind, c);
    } else {
      reporter_.error(entry.key_mark(), c.prefix + "missing required key 'type'");
    }
    c.config.descriptor = descriptor;
    if (descriptor) c.prefix = fmt::format("{} ({}): ", where, c.config.type);

    std::span<const OptionSpec> specs;
    if (descriptor && descriptor->options) specs = {descriptor->options, descriptor->option_count};
    auto declared = [&](std::string_view name) {
      return std::any_of(specs.begin(), specs.end(),
                         [&](const OptionSpec& s) { return s.name && name == s.name; });
    };
    // Core keys a kind does not take are errors, unless the plugin declares an option of that
    // name.
    bool takes_inputs = kind != Kind::kSource;
    bool takes_workers = kind == Kind::kParser || kind == Kind::kSink;
    bool takes_queue = kind != Kind::kSource;
    bool takes_reliability = kind == Kind::kSink;
    std::vector<std::string> skip = {"type"};
    std::vector<std::string> suggest = {"type"};
    for (auto [name, allowed] :
         {std::pair{"inputs", takes_inputs}, std::pair{"workers", takes_workers},
          std::pair{"queue", takes_queue}, std::pair{"retry", takes_reliability},
          std::pair{"breaker", takes_reliability}, std::pair{"spool", takes_reliability}}) {
      if (allowed) suggest.emplace_back(name);
      if (allowed || !declared(name)) skip.emplace_back(name);
    }

    ValueReader core(reporter_, &env_, c.prefix, nullptr, "key");
    const MapEntry* inputs = field("inputs");
    if (takes_inputs) {
      read_inputs(inputs, core, c);
    } else if (inputs && !declared("inputs")) {
      reporter_.error(inputs->key_mark(), c.prefix + "sources take no inputs");
    }

    if (takes_workers && descriptor) c.config.workers = default_workers(kind, descriptor->flags);
    if (const MapEntry* workers = field("workers")) {
      if (takes_workers) {
        OptionValue value;
        if (core.value(workers->value, workers->value_mark(), workers->key_mark(), kWorkersSpec,
                       "workers", value)) {
          c.config.workers = static_cast<int>(value.i);
          if (c.config.workers > 1 && descriptor && (descriptor->flags & kSingleWorker)) {
            core.error(workers->value_mark(),
                       fmt::format("workers must be 1: a {} {} runs a single instance",
                                   c.config.type, kind_name(kind)));
          }
        }
      } else if (!declared("workers")) {
        core.error(workers->key_mark(), "'workers' is only for parsers and sinks");
      }
    }

    if (const MapEntry* queue = field("queue")) {
      if (takes_queue) {
        OptionValue value;
        if (core.value(queue->value, queue->value_mark(), queue->key_mark(), kQueueSpec, "queue",
                       value)) {
          if (auto* v = value.find("max_batches")) c.config.queue.max_batches = v->i;
          if (auto* v = value.find("max_bytes")) c.config.queue.max_bytes = v->i;
          if (auto* v = value.find("when_full"))
            c.config.queue.when_full = v->s == "block" ? WhenFull::kBlock : WhenFull::kDropNewest;
        }
      } else if (!declared("queue")) {
        core.error(queue->key_mark(), "sources have no input queue");
      }
    }

    if (const MapEntry* retry = field("retry")) {
      if (takes_reliability) {
        OptionValue value;
        if (core.value(retry->value, retry->value_mark(), retry->key_mark(), kRetrySpec, "retry",
                       value))
          read_retry(value, c.config.retry);
      } else if (!declared("retry")) {
        core.error(retry->key_mark(), "'retry' is only for sinks");
      }
    }

    if (const MapEntry* breaker = field("breaker")) {
      if (takes_reliability) {
        OptionValue value;
        if (core.value(breaker->value, breaker->value_mark(), breaker->key_mark(), kBreakerSpec,
                       "breaker", value))
          read_breaker(value, c.config.breaker);
      } else if (!declared("breaker")) {
        core.error(breaker->key_mark(), "'breaker' is only for sinks");
      }
    }

    if (const MapEntry* spool = field("spool")) {
      if (takes_reliability) {
        read_spool_entry(*spool, core, c.config.spool);
      } else if (!declared("spool")) {
        core.error(spool->key_mark(), "'spool' is only for sinks");
      }
    }

    bool checkable = false;
    if (descriptor) {
      ValueReader options(reporter_, &env_, c.prefix, &c.config.option_positions);
      c.config.options = options.object(fields, specs, "", entry.key_mark(), skip, suggest);
      checkable = !options.incomplete();
      for (uint32_t i = 0; descriptor->side_outputs && i < descriptor->side_output_count; ++i) {
        const SideOutputSpec& port = descriptor->side_outputs[i];
        if (const OptionValue* v = option_at(c.config.options, port.option);
            v && v->s == port.value)
          c.config.side_outputs.emplace_back(port.name);
      }
    }
    c.config.valid = checkable;
    loaded_.push_back(std::move(c));
  }

  // `spool: false`, or a mapping like `retry:`; segment_size is checked against max_size here,
  // as the specs bound one value at a time.
  void read_spool_entry(const MapEntry& entry, ValueReader& core, SpoolConfig& spool) {
    if (entry.value.IsScalar()) {
      auto text = core.scalar(entry.value, entry.value_mark(), "spool");
      if (!text) return;
      bool on = false;
      bool is_bool = parse_bool(*text, on);
      if (is_bool && !on) {
        spool.enabled = false;
      } else {
        core.error(entry.value_mark(),
                   fmt::format("spool: expected a mapping or false, got '{}'{}", *text,
                               is_bool ? " (the spool is on by default; `spool: {}` takes its "
                                         "defaults)"
                                       : ""));
      }
      return;
    }
    OptionValue value;
    if (!core.value(entry.value, entry.value_mark(), entry.key_mark(), kSpoolSpec, "spool", value))
      return;
    read_spool(value, spool);
    if (spool.segment_size > spool.max_size) {
      YAML::Node at = entry.value[value.has("segment_size") ? "segment_size" : "max_size"];
      core.error(at.Mark(), fmt::format("spool.segment_size ({} bytes) must be <= spool.max_size "
                                        "({} bytes)",
                                        spool.segment_size, spool.max_size));
    }
  }

  const ComponentDescriptor* resolve_type(const MapEntry& type, Kind kind, Loaded& c) {
    ValueReader reader(reporter_, &env_, c.prefix, nullptr, "key");
    if (!type.value.IsScalar()) {
      reader.error(type.value_mark(), fmt::format("type: expected a {} type name, got {}",
                                                  kind_name(kind), describe(type.value)));
      return nullptr;
    }
    auto name = reader.scalar(type.value, type.value_mark(), "type");
    if (!name) return nullptr;
    c.config.type = *name;
    if (const ComponentDescriptor* d = catalog_.find(kind, *name)) return d;
    std::vector<std::string> known = catalog_.types(kind);
    std::string list =
        known.empty() ? std::string("none") : fmt::format("{}", fmt::join(known, ", "));
    reader.error(type.value_mark(),
                 fmt::format("unknown {} type '{}'{}; known: {}", kind_name(kind), *name,
                             did_you_mean(*name, known), list));
    return nullptr;
  }

  void read_inputs(const MapEntry* inputs, ValueReader& core, Loaded& c) {
    if (!inputs) {
      reporter_.error(c.key_mark, c.prefix + "missing required key 'inputs'");
      return;
    }
    auto add = [&](const YAML::Node& node, const YAML::Mark& mark, const std::string& path) {
      if (!node.IsScalar()) {
        core.error(mark,
                   fmt::format("{}: expected a component name, got {}", path, describe(node)));
        return;
      }
      if (auto name = core.scalar(node, mark, path)) {
        c.inputs.emplace_back(*name, mark);
        c.config.inputs.push_back(*name);
      }
    };
    const YAML::Node& value = inputs->value;
    if (value.IsScalar()) {
      add(value, inputs->value_mark(), "inputs");
    } else if (value.IsSequence()) {
      if (value.size() == 0) core.error(inputs->value_mark(), "inputs must not be empty");
      size_t index = 0;
      for (YAML::Node item : value) {
        YAML::Mark mark = item.IsNull() ? inputs->value_mark() : item.Mark();
        add(item, mark, fmt::format("inputs[{}]", index++));
      }
    } else {
      core.error(
          inputs->value_mark(),
          fmt::format("inputs: expected a list of component names, got {}", describe(value)));
    }
  }

  void check_graph() {
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < loaded_.size(); ++i) {
      const Loaded& c = loaded_[i];
      auto [it, inserted] = index.emplace(c.config.name, i);
      if (!inserted) {
        const Loaded& first = loaded_[it->second];
        reporter_.error(c.key_mark,
                        fmt::format("{}name '{}' is already used by {}.{}", c.prefix, c.config.name,
                                    section_name(first.config.kind), first.config.name));
      }
    }
    std::vector<std::string> candidates;
    for (const Loaded& c : loaded_)
      if (c.config.kind != Kind::kSink) candidates.push_back(c.config.name);

    std::set<std::pair<size_t, std::string>> read_ports;  // (component, side output) read
    // edges[i]: the components feeding i, with the mark of the `inputs` entry naming them.
    std::vector<std::vector<std::pair<size_t, YAML::Mark>>> edges(loaded_.size());
    for (size_t i = 0; i < loaded_.size(); ++i) {
      const Loaded& c = loaded_[i];
      std::set<std::string> seen;
      for (const auto& [name, mark] : c.inputs) {
        if (!seen.insert(name).second) {
          reporter_.error(mark, fmt::format("{}input '{}' is listed twice", c.prefix, name));
          continue;
        }
        auto [component, port] = split_input(name);
        auto it = index.find(std::string(component));
        if (it == index.end()) {
          std::vector<std::string> others;
          for (const auto& n : candidates)
            if (n != c.config.name) others.push_back(n);
          reporter_.error(mark, fmt::format("{}input '{}' does not exist{}", c.prefix, component,
                                            did_you_mean(std::string(component), others)));
        } else if (loaded_[it->second].config.kind == Kind::kSink) {
          reporter_.error(mark, fmt::format("{}input '{}' is a sink; a sink cannot be an input",
                                            c.prefix, name));
        } else if (!port.empty() && !check_port(loaded_[it->second], c, port, mark)) {
          continue;
        } else {
          edges[i].emplace_back(it->second, mark);
          if (!port.empty()) read_ports.emplace(it->second, std::string(port));
        }
      }
    }
    // A side output that is on but that nothing reads would lose what goes there.
    for (size_t i = 0; i < loaded_.size(); ++i) {
      const Loaded& p = loaded_[i];
      const ComponentDescriptor* d = p.config.descriptor;
      for (const std::string& port : p.config.side_outputs) {
        if (read_ports.count({i, port})) continue;
        const SideOutputSpec* spec = find_port(d, port);
        auto at = p.config.option_positions.find(spec->option);
        std::string message = fmt::format(
            "{}{}: {} sends records to the output '{}.{}', but no component reads it: "
            "add `inputs: [{}.{}]` to a sink (or another component)",
            p.prefix, spec->option, spec->value, p.config.name, port, p.config.name, port);
        if (at != p.config.option_positions.end())
          reporter_.error(at->second, std::move(message));
        else
          reporter_.error(p.key_mark, std::move(message));
      }
    }
    find_cycles(edges);
  }

  static const SideOutputSpec* find_port(const ComponentDescriptor* d, std::string_view port) {
    for (uint32_t i = 0; d && d->side_outputs && i < d->side_output_count; ++i)
      if (port == d->side_outputs[i].name) return &d->side_outputs[i];
    return nullptr;
  }

  // `inputs: [producer.port]` in `reader`: the producer has that side output and has it on.
  bool check_port(const Loaded& producer, const Loaded& reader, std::string_view port,
                  const YAML::Mark& mark) {
    const ComponentDescriptor* d = producer.config.descriptor;
    if (!d) return false;  // its unknown type is reported already
    const std::string& name = producer.config.name;
    const SideOutputSpec* spec = find_port(d, port);
    if (!spec) {
      std::vector<std::string> ports;
      for (uint32_t i = 0; d->side_outputs && i < d->side_output_count; ++i)
        ports.emplace_back(d->side_outputs[i].name);
      reporter_.error(
          mark, fmt::format("{}input '{}.{}': {} {} has no output '{}'{}", reader.prefix, name,
                            port, producer.config.type, kind_name(producer.config.kind), port,
                            ports.empty()
                                ? std::string("; it has only its main output: '" + name + "'")
                                : fmt::format("; its side outputs: {}{}", fmt::join(ports, ", "),
                                              did_you_mean(std::string(port), ports))));
      return false;
    }
    if (std::find(producer.config.side_outputs.begin(), producer.config.side_outputs.end(), port) ==
        producer.config.side_outputs.end()) {
      reporter_.error(mark,
                      fmt::format("{}input '{}.{}' is off: set `{}: {}` on {}.{} to turn it on",
                                  reader.prefix, name, port, spec->option, spec->value,
                                  section_name(producer.config.kind), name));
      return false;
    }
    return true;
  }

  // Depth-first search along inputs; every edge back onto the search stack closes a cycle,
  // reported at that edge's `inputs` entry and named in the direction data flows.
  void find_cycles(const std::vector<std::vector<std::pair<size_t, YAML::Mark>>>& edges) {
    enum class State { kNew, kOnStack, kDone };
    std::vector<State> state(loaded_.size(), State::kNew);
    std::vector<size_t> stack;
    auto visit = [&](auto& self, size_t u) -> void {
      state[u] = State::kOnStack;
      stack.push_back(u);
      for (const auto& [v, mark] : edges[u]) {
        if (state[v] == State::kNew) {
          self(self, v);
        } else if (state[v] == State::kOnStack) {
          size_t start =
              static_cast<size_t>(std::find(stack.begin(), stack.end(), v) - stack.begin());
          std::vector<std::string> names = {loaded_[v].config.name};
          for (size_t k = stack.size() - 1; k > start; --k)
            names.push_back(loaded_[stack[k]].config.name);
          names.push_back(loaded_[v].config.name);
          reporter_.error(mark,
                          fmt::format("{}cycle: {}", loaded_[u].prefix, fmt::join(names, " -> ")));
        }
      }
      stack.pop_back();
      state[u] = State::kDone;
    };
    for (size_t i = 0; i < loaded_.size(); ++i)
      if (state[i] == State::kNew) visit(visit, i);
  }

  Reporter& reporter_;
  const Catalog& catalog_;
  const Environment& env_;
  Pipeline& pipeline_;
  std::vector<Loaded> loaded_;
};

}  // namespace
}  // namespace detail

bool parse_listen(std::string_view listen, std::string& host, uint16_t& port, std::string& error) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    error = "expected host:port, e.g. 127.0.0.1:8686";
    return false;
  }
  std::string_view h = listen.substr(0, colon);
  std::string_view p = listen.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
    if (h.find(':') == std::string_view::npos) {
      error = "brackets are for IPv6 addresses";
      return false;
    }
  } else if (h.find(':') != std::string_view::npos) {
    error = "write an IPv6 address in brackets, e.g. [::1]:8686";
    return false;
  }
  bool ip4 = !h.empty() && h.find_first_not_of("0123456789.") == std::string_view::npos &&
             std::count(h.begin(), h.end(), '.') == 3;
  bool ip6 = h.find(':') != std::string_view::npos &&
             h.find_first_not_of("0123456789abcdefABCDEF:.") == std::string_view::npos;
  if (!ip4 && !ip6 && h != "localhost") {
    error = "the host must be an IP address or localhost";
    return false;
  }
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoul(std::string(p)) > 65535) {
    error = "the port must be a number from 0 to 65535 (0: any free port)";
    return false;
  }
  host = std::string(h);
  port = static_cast<uint16_t>(std::stoul(std::string(p)));
  return true;
}

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::clamp(CPU_COUNT(&set), 1, 64);
}

int default_workers(Kind kind, uint32_t flags) {
  if (kind == Kind::kParser) return usable_cores();
  if (kind == Kind::kSink && !(flags & (kSingleWorker | kOrderedWrites))) return usable_cores();
  return 1;
}

bool is_loopback(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::string Error::to_string() const {
  return fmt::format("{}:{}:{}: {}", pos.file, pos.line, pos.column, message);
}

const ComponentConfig* Pipeline::find(std::string_view name) const {
  for (const auto& c : components)
    if (c.name == name) return &c;
  return nullptr;
}

Environment process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

std::optional<Pipeline> load(const std::string& path, std::string_view text, const Catalog& catalog,
                             const Environment& env, std::vector<Error>& errors,
                             Pipeline* partial) {
  detail::Reporter reporter(path);
  Pipeline pipeline;
  pipeline.path = path;
  try {
    std::optional<YAML::Node> root = detail::parse_document(text, reporter);
    if (root && root->IsNull()) {
      reporter.error(YAML::Mark(), "the file is empty: expected a mapping with sources and sinks");
    } else if (root) {
      detail::Loader(reporter, catalog, env, pipeline).load(*root);
    }
  } catch (const YAML::Exception& e) {
    reporter.error(e.mark, "YAML error: " + e.msg);
  }
  if (reporter.count() > 0) {
    std::vector<Error> found = reporter.sorted();
    errors.insert(errors.end(), found.begin(), found.end());
    if (partial) *partial = std::move(pipeline);
    return std::nullopt;
  }
  return pipeline;
}

std::vector<std::string> read_plugin_dirs(std::string_view text, const Environment& env) {
  std::vector<std::string> dirs;
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsMap()) return {};
    const YAML::Node node = root["plugin_dirs"];
    if (!node.IsDefined() || node.IsNull()) return {};
    std::vector<YAML::Node> items;
    if (node.IsScalar()) {
      items.push_back(node);
    } else if (node.IsSequence()) {
      for (YAML::Node item : node) items.push_back(item);
    } else {
      return {};
    }
    for (const YAML::Node& item : items) {
      std::string dir;
      std::string error;
      if (!item.IsScalar() || !detail::substitute_env(item.Scalar(), env, dir, error)) return {};
      dirs.push_back(std::move(dir));
    }
  } catch (const YAML::Exception&) {
    return {};
  }
  return dirs;
}

std::optional<Options> options_from_yaml(const ComponentDescriptor& descriptor,
                                         std::string_view yaml, std::vector<Error>& errors,
                                         const std::string& path) {
  detail::Reporter reporter(path);
  Options options;
  try {
    std::optional<YAML::Node> root = detail::parse_document(yaml, reporter);
    if (root && !root->IsNull() && !root->IsMap()) {
      reporter.error(root->Mark(),
                     fmt::format("expected a mapping of options, got {}", detail::describe(*root)));
    } else if (root) {
      detail::ValueReader reader(reporter, nullptr, "");
      std::span<const OptionSpec> specs;
      if (descriptor.options) specs = {descriptor.options, descriptor.option_count};
      YAML::Mark owner = root->IsMap() ? root->Mark() : YAML::Mark();
      options = reader.object(detail::map_entries(*root, reporter, ""), specs, "", owner);
    }
  } catch (const YAML::Exception& e) {
    reporter.error(e.mark, "YAML error: " + e.msg);
  }
  if (reporter.count() > 0) {
    std::vector<Error> found = reporter.sorted();
    errors.insert(errors.end(), found.begin(), found.end());
    return std::nullopt;
  }
  return options;
}

std::pair<std::string_view, std::string_view> split_input(std::string_view input) {
  size_t dot = input.find('.');
  if (dot == std::string_view::npos) return {input, {}};
  return {input.substr(0, dot), input.substr(dot + 1)};
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kSource:
      return "source";
    case Kind::kParser:
      return "parser";
    case Kind::kAggregator:
      return "aggregate";
    case Kind::kSink:
      return "sink";
  }
  return "unknown";
}

const char* section_name(Kind kind) {
  switch (kind) {
    case Kind::kSource:
      return "sources";
    case Kind::kParser:
      return "parsers";
    case Kind::kAggregator:
      return "aggregates";
    case Kind::kSink:
      return "sinks";
  }
  return "unknown";
}

}  // namespace ingestd::config

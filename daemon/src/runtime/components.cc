#include "runtime/components.h"

#include <fmt/format.h>

#include <string>

namespace ingestd::runtime {

namespace {

// Turns a factory's reports into `file:line:col` errors for one component.
class ComponentDiagnostics final : public Diagnostics {
 public:
  ComponentDiagnostics(const config::ComponentConfig& c, std::vector<config::Error>& errors)
      : c_(c), errors_(errors) {}

  void error(std::string_view option, std::string_view message) override {
    std::string prefix = fmt::format("{}.{} ({})", config::section_name(c_.kind), c_.name, c_.type);
    std::string text = option.empty() ? fmt::format("{}: {}", prefix, message)
                                      : fmt::format("{}: {}: {}", prefix, option, message);
    errors_.push_back(config::Error{position_of(option), std::move(text)});
    ++count;
  }

  int count = 0;

 private:
  // The option's own position, else that of its nearest enclosing option, else the component's.
  config::Position position_of(std::string_view option) const {
    std::string path(option);
    while (!path.empty()) {
      if (auto it = c_.option_positions.find(path); it != c_.option_positions.end())
        return it->second;
      auto dot = path.rfind('.');
      path.resize(dot == std::string::npos ? 0 : dot);
    }
    return c_.pos;
  }

  const config::ComponentConfig& c_;
  std::vector<config::Error>& errors_;
};

BatchQueue::WhenFull when_full(config::WhenFull w) {
  return w == config::WhenFull::kDropNewest ? BatchQueue::WhenFull::kDropNewest
                                            : BatchQueue::WhenFull::kBlock;
}

}  // namespace

void Components::check_factories(const config::Pipeline& partial,
                                 std::vector<config::Error>& errors) {
  for (const auto& c : partial.components) {
    if (!c.valid || !c.descriptor) continue;
    ComponentDiagnostics diag(c, errors);
    std::unique_ptr<Component> made(c.descriptor->create(c.options, diag));
  }
}

std::unique_ptr<Components> Components::build(const config::Pipeline& pipeline, Metrics& metrics,
                                              std::vector<config::Error>& errors) {
  auto made = std::make_unique<Components>();
  bool ok = true;
  for (const auto& c : pipeline.components) {
    auto built = std::make_unique<Built>();
    built->config = &c;
    ComponentDiagnostics diag(c, errors);
    int instances = (c.kind == Kind::kParser || c.kind == Kind::kSink) ? c.workers : 1;
    for (int i = 0; i < instances && diag.count == 0; ++i) {
      Component* instance = c.descriptor->create(c.options, diag);
      if (instance)
        built->instances.emplace_back(instance);
      else if (diag.count == 0)
        diag.error("", "the factory failed without saying why");
    }
    ok = ok && diag.count == 0;
    if (c.kind != Kind::kSource) {
      built->input = std::make_unique<BatchQueue>(c.queue.max_batches, c.queue.max_bytes,
                                                  when_full(c.queue.when_full),
                                                  metrics.counter(c.name + ".queue_dropped"),
                                                  metrics.counter(c.name + ".shutdown_dropped"));
    }
    made->built_.push_back(std::move(built));
  }
  if (!ok) return nullptr;
  return made;
}

std::unique_ptr<Built> Components::take(std::string_view name) {
  for (auto& b : built_)
    if (b && b->config->name == name) return std::move(b);
  return nullptr;
}

}  // namespace ingestd::runtime

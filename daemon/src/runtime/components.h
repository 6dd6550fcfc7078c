#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "ingestd/component.h"
#include "runtime/metrics.h"
#include "runtime/queue.h"

namespace ingestd::runtime {

// One component made from its config, not yet running: its instances and its input edge.
struct Built {
  const config::ComponentConfig* config = nullptr;
  // One instance per worker for parsers and sinks, else one.
  std::vector<std::unique_ptr<Component>> instances;
  std::unique_ptr<BatchQueue> input;  // null for sources
};

// The components of a pipeline, made by their factories.
//
// build() runs every component's factory (so `ingestd validate` exercises the same path as a
// start, minus I/O) and turns what a factory reports into config errors at the position of the
// option it names. The components refer to the Pipeline they were built from, which must outlive
// them. The edges between them are the graph layer's (graph::Model); the runtime wires them.
class Components {
 public:
  static std::unique_ptr<Components> build(const config::Pipeline& pipeline, Metrics& metrics,
                                           std::vector<config::Error>& errors);

  // For a config that failed to load: runs the factory of every component whose own options are
  // valid and adds what they report, so that one pass shows every error.
  static void check_factories(const config::Pipeline& partial, std::vector<config::Error>& errors);

  // Hands one component over (to the runtime); nullptr when there is none of that name.
  std::unique_ptr<Built> take(std::string_view name);
  const std::vector<std::unique_ptr<Built>>& all() const { return built_; }

 private:
  std::vector<std::unique_ptr<Built>> built_;  // in file order
};

}  // namespace ingestd::runtime

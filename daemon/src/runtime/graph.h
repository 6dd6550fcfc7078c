#pragma once

#include <memory>
#include <vector>

#include "config/config.h"
#include "ingestd/component.h"
#include "runtime/metrics.h"
#include "runtime/queue.h"

namespace ingestd::runtime {

// One component of a pipeline: its instances, its input edge and the nodes it feeds.
struct Node {
  const config::ComponentConfig* config = nullptr;
  // One instance per worker for parsers and sinks, else one.
  std::vector<std::unique_ptr<Component>> instances;
  std::unique_ptr<BatchQueue> input;  // null for sources
  std::vector<Node*> outputs;
};

// The pipeline model turned into components and edges.
//
// build() runs every component's factory (so `ingestd validate` exercises the same path as a
// start, minus I/O) and turns what a factory reports into config errors at the position of the
// option it names. Nodes are in topological order: every node comes after its inputs. The graph
// refers to the Pipeline it was built from, which must outlive it.
class Graph {
 public:
  static std::unique_ptr<Graph> build(const config::Pipeline& pipeline, Metrics& metrics,
                                      std::vector<config::Error>& errors);

  // For a config that failed to load: runs the factory of every component whose own options are
  // valid and adds what they report, so that one pass shows every error.
  static void check_factories(const config::Pipeline& partial, std::vector<config::Error>& errors);

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }

 private:
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace ingestd::runtime

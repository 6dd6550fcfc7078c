// The graph layer: a pipeline as a plain model (nodes, edges, fingerprints) and the diff of two.
// It knows no threads and no plugins' code; the runtime turns a model into running components and
// uses a diff to rewire a running pipeline on reload.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "ingestd/plugin.h"

namespace ingestd::graph {

struct Node {
  std::string name;
  Kind kind = Kind::kSource;
  std::vector<std::string> inputs;        // names, or `name.port` for a side output
  std::vector<std::string> side_outputs;  // the ports it has on (see SideOutputSpec)
  // The component's own configuration and the plugin that implements it. Inputs are edges and
  // not part of it: a component whose inputs change keeps running and is only rewired.
  std::string fingerprint;
};

// Nodes in topological order (every node after its inputs; otherwise in file order).
class Model {
 public:
  // `plugin` names the plugin behind a component (name and version), so that a new plugin
  // version replaces the components it implements. config::load has rejected cycles and
  // dangling inputs; nodes left unresolved here would be a bug in it and are dropped.
  static Model from(const config::Pipeline& pipeline,
                    const std::function<std::string(const config::ComponentConfig&)>& plugin);

  const std::vector<Node>& nodes() const { return nodes_; }
  const Node* find(std::string_view name) const;
  // The node's index in nodes(), or nodes().size() when there is none of that name.
  size_t position(std::string_view name) const;
  // The names of the nodes that take `name` as an input (its side output `port` for a port other
  // than ""), in topological order.
  const std::vector<std::string>& consumers(std::string_view name,
                                            std::string_view port = {}) const;

 private:
  std::vector<Node> nodes_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position
  // by position, then port ("": the main output)
  std::vector<std::map<std::string, std::vector<std::string>, std::less<>>> consumers_;
};

// What a reload changes, by component name. Every name of either model is in exactly one of
// kept, replaced, added and removed.
struct Diff {
  std::vector<std::string> kept;      // same fingerprint: keeps running with its state
  std::vector<std::string> replaced;  // fingerprint changed: drained, flushed, made anew
  std::vector<std::string> added;
  std::vector<std::string> removed;
  // Kept components whose inputs or consumers (of any port) changed: only their edges move.
  std::vector<std::string> rewired;

  bool changes_nothing() const;
  // "2 kept (1 rewired), 1 replaced, 1 added, 0 removed"
  std::string summary() const;
};

Diff diff(const Model& before, const Model& after);

}  // namespace ingestd::graph

#include "graph/model.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace ingestd::graph {

Model Model::from(const config::Pipeline& pipeline,
                  const std::function<std::string(const config::ComponentConfig&)>& plugin) {
  // Kahn's algorithm; among the nodes whose inputs are all placed, the first in the file goes
  // first. Linear in nodes and edges (times a log), whatever the file order.
  const auto& components = pipeline.components;
  std::map<std::string_view, size_t> by_name;
  for (size_t i = 0; i < components.size(); ++i) by_name.emplace(components[i].name, i);
  std::vector<size_t> waiting_on(components.size(), 0);
  std::vector<std::vector<size_t>> feeds(components.size());
  for (size_t i = 0; i < components.size(); ++i)
    for (const auto& in : components[i].inputs) {
      auto it = by_name.find(config::split_input(in).first);
      if (it == by_name.end()) {
        waiting_on[i] = components.size() + 1;  // dangling: never placed
        continue;
      }
      ++waiting_on[i];
      feeds[it->second].push_back(i);
    }
  std::set<size_t> ready;
  for (size_t i = 0; i < components.size(); ++i)
    if (waiting_on[i] == 0) ready.insert(i);
  Model model;
  while (!ready.empty()) {
    size_t i = *ready.begin();
    ready.erase(ready.begin());
    const config::ComponentConfig& c = components[i];
    model.index_.emplace(c.name, model.nodes_.size());
    model.nodes_.push_back(Node{c.name, c.kind, c.inputs, c.side_outputs,
                                fmt::format("{};plugin={}", c.fingerprint, plugin(c))});
    for (size_t next : feeds[i])
      if (--waiting_on[next] == 0) ready.insert(next);
  }
  model.consumers_.resize(model.nodes_.size());
  for (const auto& n : model.nodes_)
    for (const auto& in : n.inputs) {
      auto [name, port] = config::split_input(in);
      model.consumers_[model.index_.find(name)->second][std::string(port)].push_back(n.name);
    }
  return model;
}

const Node* Model::find(std::string_view name) const {
  size_t i = position(name);
  return i < nodes_.size() ? &nodes_[i] : nullptr;
}

size_t Model::position(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nodes_.size() : it->second;
}

const std::vector<std::string>& Model::consumers(std::string_view name,
                                                 std::string_view port) const {
  static const std::vector<std::string> kNone;
  size_t i = position(name);
  if (i >= nodes_.size()) return kNone;
  auto it = consumers_[i].find(port);
  return it == consumers_[i].end() ? kNone : it->second;
}

namespace {

std::vector<std::string> sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

bool Diff::changes_nothing() const {
  return replaced.empty() && added.empty() && removed.empty() && rewired.empty();
}

std::string Diff::summary() const {
  std::string kept_text = fmt::format("{} kept", kept.size());
  if (!rewired.empty()) kept_text += fmt::format(" ({} rewired)", rewired.size());
  return fmt::format("{}, {} replaced, {} added, {} removed", kept_text, replaced.size(),
                     added.size(), removed.size());
}

Diff diff(const Model& before, const Model& after) {
  Diff d;
  for (const auto& n : after.nodes()) {
    const Node* old = before.find(n.name);
    if (!old) {
      d.added.push_back(n.name);
    } else if (old->fingerprint != n.fingerprint || old->kind != n.kind) {
      d.replaced.push_back(n.name);
    } else {
      d.kept.push_back(n.name);
      // Same fingerprint, so the same side outputs on.
      bool moved = sorted(old->inputs) != sorted(n.inputs) ||
                   sorted(before.consumers(n.name)) != sorted(after.consumers(n.name));
      for (const auto& port : n.side_outputs)
        moved = moved ||
                sorted(before.consumers(n.name, port)) != sorted(after.consumers(n.name, port));
      if (moved) d.rewired.push_back(n.name);
    }
  }
  for (const auto& n : before.nodes())
    if (!after.find(n.name)) d.removed.push_back(n.name);
  return d;
}

}  // namespace ingestd::graph

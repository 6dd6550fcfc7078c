#include "graph/model.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace ingestd::graph {

Model Model::from(const config::Pipeline& pipeline,
                  const std::function<std::string(const config::ComponentConfig&)>& plugin) {
  Model model;
  std::set<std::string, std::less<>> placed;
  std::vector<const config::ComponentConfig*> pending;
  for (const auto& c : pipeline.components) pending.push_back(&c);
  for (bool progress = true; progress && !pending.empty();) {
    progress = false;
    for (auto it = pending.begin(); it != pending.end();) {
      const config::ComponentConfig& c = **it;
      bool ready = std::all_of(c.inputs.begin(), c.inputs.end(),
                               [&](const std::string& in) { return placed.count(in) > 0; });
      if (!ready) {
        ++it;
        continue;
      }
      model.nodes_.push_back(
          Node{c.name, c.kind, c.inputs, fmt::format("{};plugin={}", c.fingerprint, plugin(c))});
      placed.insert(c.name);
      it = pending.erase(it);
      progress = true;
    }
  }
  return model;
}

const Node* Model::find(std::string_view name) const {
  for (const auto& n : nodes_)
    if (n.name == name) return &n;
  return nullptr;
}

std::vector<std::string> Model::consumers(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& n : nodes_)
    if (std::find(n.inputs.begin(), n.inputs.end(), name) != n.inputs.end()) out.push_back(n.name);
  return out;
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
      if (sorted(old->inputs) != sorted(n.inputs) ||
          sorted(before.consumers(n.name)) != sorted(after.consumers(n.name)))
        d.rewired.push_back(n.name);
    }
  }
  for (const auto& n : before.nodes())
    if (!after.find(n.name)) d.removed.push_back(n.name);
  return d;
}

}  // namespace ingestd::graph

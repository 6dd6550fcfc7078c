#include <gtest/gtest.h>

#include "graph/model.h"

namespace ingestd::graph {
namespace {

using Names = std::vector<std::string>;

config::ComponentConfig component(const char* name, Kind kind, Names inputs,
                                  const char* fingerprint, const char* type = "t") {
  config::ComponentConfig c;
  c.name = name;
  c.kind = kind;
  c.type = type;
  c.inputs = std::move(inputs);
  c.fingerprint = fingerprint;
  return c;
}

std::string plugin_v1(const config::ComponentConfig&) {
  return "p@1";
}

// src -> json -> win -> out
config::Pipeline base() {
  config::Pipeline p;
  p.components.push_back(component("out", Kind::kSink, {"win"}, "file /x"));
  p.components.push_back(component("src", Kind::kSource, {}, "generator rate=10"));
  p.components.push_back(component("win", Kind::kAggregator, {"json"}, "window 1s"));
  p.components.push_back(component("json", Kind::kParser, {"src"}, "json"));
  return p;
}

TEST(Model, NodesComeAfterTheirInputsWhateverTheFileOrder) {
  Model m = Model::from(base(), plugin_v1);
  Names order;
  for (const auto& n : m.nodes()) order.push_back(n.name);
  EXPECT_EQ(order, (Names{"src", "json", "win", "out"}));
  EXPECT_EQ(m.consumers("src"), Names{"json"});
  EXPECT_EQ(m.consumers("out"), Names{});
}

// base() with the window's side output `late` on and read by a sink.
config::Pipeline with_late_sink() {
  config::Pipeline p = base();
  for (auto& c : p.components)
    if (c.name == "win") c.side_outputs = {"late"};
  p.components.push_back(component("late", Kind::kSink, {"win.late"}, "file /late"));
  return p;
}

TEST(Model, SideOutputConsumersArePerPort) {
  Model m = Model::from(with_late_sink(), plugin_v1);
  Names order;
  for (const auto& n : m.nodes()) order.push_back(n.name);
  EXPECT_EQ(order, (Names{"src", "json", "win", "out", "late"}));
  EXPECT_EQ(m.consumers("win"), Names{"out"});
  EXPECT_EQ(m.consumers("win", "late"), Names{"late"});
  EXPECT_EQ(m.consumers("win", "other"), Names{});
}

TEST(Diff, ASideOutputsConsumersChangingRewiresItsProducer) {
  config::Pipeline before = with_late_sink();
  config::Pipeline after = with_late_sink();
  for (auto& c : after.components)
    if (c.name == "late") c.name = "late2";  // the late sink swapped for another
  Diff d = diff(Model::from(before, plugin_v1), Model::from(after, plugin_v1));
  EXPECT_EQ(d.added, Names{"late2"});
  EXPECT_EQ(d.removed, Names{"late"});
  EXPECT_EQ(d.rewired, Names{"win"});
  EXPECT_TRUE(
      diff(Model::from(before, plugin_v1), Model::from(before, plugin_v1)).changes_nothing());
}

TEST(Diff, SameConfigWrittenAgainChangesNothing) {
  Diff d = diff(Model::from(base(), plugin_v1), Model::from(base(), plugin_v1));
  EXPECT_TRUE(d.changes_nothing());
  EXPECT_EQ(d.kept, (Names{"src", "json", "win", "out"}));
  EXPECT_EQ(d.summary(), "4 kept, 0 replaced, 0 added, 0 removed");
}

TEST(Diff, AnAddedSinkRewiresOnlyItsInput) {
  config::Pipeline next = base();
  next.components.push_back(component("copy", Kind::kSink, {"win"}, "stdout"));
  Diff d = diff(Model::from(base(), plugin_v1), Model::from(next, plugin_v1));
  EXPECT_EQ(d.added, Names{"copy"});
  EXPECT_EQ(d.kept, (Names{"src", "json", "win", "out"}));
  EXPECT_EQ(d.rewired, Names{"win"});
  EXPECT_TRUE(d.replaced.empty());
  EXPECT_TRUE(d.removed.empty());
  EXPECT_EQ(d.summary(), "4 kept (1 rewired), 0 replaced, 1 added, 0 removed");
}

TEST(Diff, AChangedOptionReplacesOnlyThatComponent) {
  config::Pipeline next = base();
  next.components[2].fingerprint = "window 5s";
  Diff d = diff(Model::from(base(), plugin_v1), Model::from(next, plugin_v1));
  EXPECT_EQ(d.replaced, Names{"win"});
  EXPECT_EQ(d.kept, (Names{"src", "json", "out"}));
  EXPECT_TRUE(d.rewired.empty());
}

TEST(Diff, ANewPluginVersionReplacesItsComponents) {
  auto v2_for_json = [](const config::ComponentConfig& c) {
    return c.name == "json" ? std::string("p@2") : std::string("p@1");
  };
  Diff d = diff(Model::from(base(), plugin_v1), Model::from(base(), v2_for_json));
  EXPECT_EQ(d.replaced, Names{"json"});
}

TEST(Diff, AKindChangeUnderTheSameNameIsAReplacement) {
  config::Pipeline next = base();
  next.components[3] = component("json", Kind::kAggregator, {"src"}, "json");
  Diff d = diff(Model::from(base(), plugin_v1), Model::from(next, plugin_v1));
  EXPECT_EQ(d.replaced, Names{"json"});
}

TEST(Diff, RemovingAStageRewiresBothSides) {
  // src -> win directly; json goes.
  config::Pipeline next = base();
  next.components.pop_back();
  next.components[2].inputs = {"src"};
  Diff d = diff(Model::from(base(), plugin_v1), Model::from(next, plugin_v1));
  EXPECT_EQ(d.removed, Names{"json"});
  EXPECT_EQ(d.kept, (Names{"src", "win", "out"}));
  EXPECT_EQ(d.rewired, (Names{"src", "win"}));
  EXPECT_EQ(d.summary(), "3 kept (2 rewired), 0 replaced, 0 added, 1 removed");
}

TEST(Diff, ReorderedInputsAreNotARewiring) {
  config::Pipeline before = base();
  before.components.push_back(component("src2", Kind::kSource, {}, "generator"));
  before.components[3].inputs = {"src", "src2"};
  config::Pipeline after = before;
  after.components[3].inputs = {"src2", "src"};
  Diff d = diff(Model::from(before, plugin_v1), Model::from(after, plugin_v1));
  EXPECT_TRUE(d.changes_nothing());
}

}  // namespace
}  // namespace ingestd::graph

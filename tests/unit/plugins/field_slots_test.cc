#include "aggregate/window/field_slots.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ingestd::plugins {
namespace {

// What FieldSlots finds must be what Batch::find() finds for each key: the first field of that
// name or none. The expected fields are named by their position in the event, written out here.
TEST(FieldSlots, FindsTheFirstFieldOfEachKeyInOnePass) {
  FieldSlots slots;
  const std::string long_key(70, 'k');
  const std::vector<std::string> keys = {"dev", "sev", "ctry", "title", "", long_key, "gone"};
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(slots.add(keys[i]), i);
  EXPECT_EQ(slots.add("sev"), 1u) << "a key added again keeps its slot";
  EXPECT_EQ(slots.size(), keys.size());

  Batch batch;
  Event& e = batch.add("{}", 0);
  const std::vector<std::pair<std::string, int64_t>> fields = {
      {"sev", 0},  {"dex", 1}, {"dev", 2},    {"title", 3}, {"sev", 4},
      {"ctry", 5}, {"", 6},    {long_key, 7}, {"dev", 8},   {long_key + "x", 9}};
  for (const auto& [key, n] : fields) batch.append_field(e, key, Value::integer(n));

  std::vector<const Value*> found;
  slots.find(batch, e, found);
  ASSERT_EQ(found.size(), keys.size());
  const std::vector<int64_t> expected = {2, 0, 5, 3, 6, 7, -1};  // -1: no such field
  for (size_t i = 0; i < keys.size(); ++i) {
    if (expected[i] < 0) {
      EXPECT_EQ(found[i], nullptr) << keys[i];
    } else {
      ASSERT_NE(found[i], nullptr) << keys[i];
      EXPECT_EQ(found[i]->i, expected[i]) << keys[i];
      EXPECT_EQ(found[i], batch.find(e, keys[i])) << keys[i];
    }
  }

  // The next event, with other fields in another order: nothing carries over.
  Event& f = batch.add("{}", 0);
  batch.append_field(f, "title", Value::string("t"));
  slots.find(batch, f, found);
  for (size_t i = 0; i < keys.size(); ++i)
    EXPECT_EQ(found[i], keys[i] == "title" ? batch.find(f, "title") : nullptr) << keys[i];
}

TEST(FieldSlots, NoKeysFindNothing) {
  FieldSlots slots;
  Batch batch;
  Event& e = batch.add("{}", 0);
  batch.append_field(e, "a", Value::integer(1));
  std::vector<const Value*> found = {nullptr, nullptr};
  slots.find(batch, e, found);
  EXPECT_TRUE(found.empty());
}

}  // namespace
}  // namespace ingestd::plugins

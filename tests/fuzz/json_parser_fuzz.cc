// The JSON parser, with sanitize rules, on arbitrary bytes: never crashes, reads out of bounds or
// leaks, and keeps its promises whatever the input:
// - every record is counted exactly once as parsed, errors, skipped or rejected, and only the
//   parsed ones stay in the batch;
// - no event left holds what a rule removes: a title beginning "busted data" (reject), an
//   a.token matching ^tok_[0-9] (strip), an empty country (replace), a `secret` (strip);
// - every event's raw bytes are one JSON object that parses again;
// - with dead letters on, each error and each rejected record is dead-lettered once;
// - the flat reader and the simdjson walk agree: two parsers without rules, one with the flat
//   reader and one without, make the same fields of every record, doubles to the bit (and the
//   same errors), with and without `fields`.
//
// Input: the first byte chooses the options (strip_prefix, max_depth, dead letters, batch size,
// `fields` for the pair above); the rest is split at '\n' into records, handed to the parsers in
// batches, every other one laid out in one buffer as the file source does.
#include <re2/re2.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "batch_lines.h"
#include "exact_fields.h"
#include "fake_context.h"
#include "parse/json/json_parser.h"

namespace {

using ingestd::Batch;
using ingestd::OptionType;
using ingestd::OptionValue;
using ingestd::Value;
using ingestd::testing::add_lines;
using ingestd::testing::exact_fields;

OptionValue text(OptionType type, std::string s) {
  OptionValue v;
  v.type = type;
  v.s = std::move(s);
  return v;
}

OptionValue options(uint8_t selector) {
  OptionValue o;
  o.type = OptionType::kObject;
  if (selector & 1) o.entries.emplace_back("strip_prefix", text(OptionType::kString, "data: "));
  o.entries.emplace_back("on_error",
                         text(OptionType::kEnum, selector & 2 ? "dead_letter" : "drop"));
  o.entries.emplace_back("on_reject",
                         text(OptionType::kEnum, selector & 2 ? "dead_letter" : "drop"));
  o.entries.emplace_back("time_field", text(OptionType::kString, "time"));
  o.entries.emplace_back("time_format", text(OptionType::kEnum, "ms"));
  OptionValue depth;
  depth.type = OptionType::kInt;
  depth.i = 1 + ((selector >> 2) & 3);
  o.entries.emplace_back("max_depth", depth);

  // The sanitize rules, as the core hands over a kObjectList: items keyed by their index.
  OptionValue rules;
  rules.type = OptionType::kObjectList;
  auto rule = [&](std::initializer_list<std::pair<const char*, std::string>> settings) {
    OptionValue item;
    item.type = OptionType::kObject;
    for (const auto& [key, value] : settings)
      item.entries.emplace_back(
          key,
          text(key == std::string_view("action") ? OptionType::kEnum : OptionType::kString, value));
    rules.entries.emplace_back(std::to_string(rules.entries.size()), std::move(item));
  };
  rule({{"name", "busted"}, {"field", "title"}, {"prefix", "busted data"}, {"action", "reject"}});
  rule({{"name", "token"}, {"field", "a.token"}, {"match", "^tok_[0-9]"}, {"action", "strip"}});
  rule({{"name", "country"},
        {"field", "country"},
        {"equals", ""},
        {"action", "replace"},
        {"value", "unknown"}});
  rule({{"field", "secret"}, {"action", "strip"}});
  o.entries.emplace_back("sanitize", rules);
  return o;
}

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "%s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

uint64_t counted(ingestd::testing::FakeContext& ctx) {
  return ctx.count("parsed") + ctx.count("errors") + ctx.count("skipped") + ctx.count("rejected");
}

void check_event(const Batch& batch, const ingestd::Event& event, const RE2& token) {
  const Value* title = batch.find(event, "title");
  if (title && title->type == Value::Type::kString && title->s.starts_with("busted data"))
    fail("a busted title was kept", event.raw);
  const Value* t = batch.find(event, "a.token");
  if (t && t->type == Value::Type::kString &&
      RE2::PartialMatch(re2::StringPiece(t->s.data(), t->s.size()), token))
    fail("a token was kept", event.raw);
  const Value* country = batch.find(event, "country");
  if (country && country->type == Value::Type::kString && country->s.empty())
    fail("an empty country was kept", event.raw);
  if (batch.find(event, "secret")) fail("a secret was kept", event.raw);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t per_batch = 1 + ((selector >> 4) & 7);
  const bool dead_letters = selector & 2;

  ingestd::testing::FakeContext ctx;
  ingestd::testing::CollectingDiagnostics diag;
  ingestd::plugins::JsonParser parser(options(selector), diag);
  if (!diag.errors.empty()) fail("the fuzz target's options are invalid", diag.errors[0].second);
  parser.start(ctx);
  ingestd::OptionValue plain;  // a second parser, without rules, re-reads what the first wrote
  plain.type = OptionType::kObject;
  ingestd::testing::FakeContext plain_ctx;
  ingestd::plugins::JsonParser reader(plain, diag);
  reader.start(plain_ctx);
  // The pair that must agree: the flat reader on and off.
  ingestd::OptionValue pair_options = plain;
  if (selector & 128) {
    OptionValue fields;
    fields.type = OptionType::kStringList;
    fields.list = {"a", "title", "b.c", "n"};
    pair_options.entries.emplace_back("fields", fields);
  }
  ingestd::testing::FakeContext flat_ctx, walk_ctx;
  ingestd::plugins::JsonParser flat(pair_options, diag, true), walk(pair_options, diag, false);
  flat.start(flat_ctx);
  walk.start(walk_ctx);
  const RE2 token("^tok_[0-9]");

  std::vector<std::string_view> records;
  for (size_t start = 0; start <= input.size();) {
    size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    records.push_back(input.substr(start, end - start));
    start = end + 1;
  }
  for (size_t first = 0; first < records.size(); first += per_batch) {
    Batch batch;
    size_t n = std::min(per_batch, records.size() - first);
    std::vector<std::string_view> slice(records.begin() + first, records.begin() + first + n);
    // Every other batch lies in one buffer, where the parser may read it as a document stream.
    if ((first / per_batch) % 2 == 1)
      add_lines(batch, slice);
    else
      for (std::string_view r : slice) batch.add(batch.copy(r), 0);
    uint64_t before = counted(ctx), parsed_before = ctx.count("parsed");
    parser.parse(ctx, batch);
    if (counted(ctx) - before != n) fail("records were not each counted once");
    if (batch.size() != ctx.count("parsed") - parsed_before)
      fail("the batch does not hold exactly the parsed records");

    Batch again;
    for (const ingestd::Event& e : batch.events()) {
      check_event(batch, e, token);
      again.add(again.copy(e.raw), 0);
    }
    reader.parse(plain_ctx, again);
    if (plain_ctx.count("errors") != 0 || again.size() != batch.size())
      fail("an event's raw bytes are not a JSON object", batch.events()[0].raw);

    Batch by_flat, by_walk;
    add_lines(by_flat, slice);
    add_lines(by_walk, slice);
    flat.parse(flat_ctx, by_flat);
    walk.parse(walk_ctx, by_walk);
    if (by_flat.size() != by_walk.size() || flat_ctx.count("errors") != walk_ctx.count("errors"))
      fail("the flat reader and the simdjson walk parse different records", slice[0]);
    for (size_t i = 0; i < by_flat.size(); ++i)
      if (exact_fields(by_flat, by_flat.events()[i]) != exact_fields(by_walk, by_walk.events()[i]))
        fail("the flat reader and the simdjson walk read a record differently",
             by_flat.events()[i].raw);
  }
  uint64_t expected_letters = dead_letters ? ctx.count("errors") + ctx.count("rejected") : 0;
  if (ctx.dead_letters.size() != expected_letters) fail("dead letters do not add up");
  return 0;
}

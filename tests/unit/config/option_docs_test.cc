// option_docs(): the option reference `ingestd plugins` prints, generated from the schemas.
#include "config/option_docs.h"

#include <gtest/gtest.h>

#include "test_catalog.h"

namespace ingestd::config {
namespace {

TEST(OptionDocs, MarkdownRowsNameChildrenByTheirPath) {
  EXPECT_EQ(option_docs(testing::kFilterOptions, true),
            "| `rules` | list of objects |  |\n"
            "| `rules[].name` | string |  |\n"
            "| `rules[].field` | string, required |  |\n"
            "| `rules[].action` | enum (drop\\|keep), default drop |  |\n"
            "| `rules[].limit` | int, default 10, 1 to 100 |  |\n"
            "| `rules[].every` | duration, >= 1ms |  |\n"
            "| `rules[].retry` | object |  |\n"
            "| `rules[].retry.initial` | duration, default 100ms |  |\n"
            "| `rules[].retry.max` | duration, default 30s |  |\n"
            "| `rules[].retry.jitter` | enum (full\\|none), default full |  |\n"
            "| `mode` | enum (all\\|first), default all |  |\n");
}

constexpr OptionSpec kDocumented[] = {
    {.name = "items",
     .type = OptionType::kObjectList,
     .doc = "One `item` | another.",
     .children = testing::kTlsChildren,
     .child_count = std::size(testing::kTlsChildren)},
};

TEST(OptionDocs, TextIndentsChildrenAndQuotesCodeSpans) {
  EXPECT_EQ(option_docs(kDocumented, false),
            "    items (list of objects): One 'item' | another.\n"
            "      items[].cert (string, required): \n"
            "      items[].key (string, required): \n");
  EXPECT_EQ(option_docs(kDocumented, true),
            "| `items` | list of objects | One `item` \\| another. |\n"
            "| `items[].cert` | string, required |  |\n"
            "| `items[].key` | string, required |  |\n");
  // A kObject's children are named with a dot.
  EXPECT_NE(option_docs(testing::kWindowOptions, false)
                .find("\n      window.size (duration, required, >= 1ms): \n"),
            std::string::npos);
}

}  // namespace
}  // namespace ingestd::config

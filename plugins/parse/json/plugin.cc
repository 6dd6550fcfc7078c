#include "json_parser.h"

INGESTD_PLUGIN("json", "0.1.0",
               ingestd::describe<ingestd::plugins::JsonParser>(
                   ingestd::Kind::kParser, "json", ingestd::plugins::kJsonParserDoc,
                   ingestd::plugins::kJsonParserOptions))

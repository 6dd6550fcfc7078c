#include "json_parser.h"

INGESTD_PLUGIN("parse_json", "0.1.0",
               ingestd::describe<ingestd::plugins::JsonParser>(
                   ingestd::Kind::kParser, "json", ingestd::plugins::kJsonParserDoc,
                   ingestd::plugins::kJsonParserOptions))

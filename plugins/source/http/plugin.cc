#include "ingestd/plugin.h"
#include "http_source.h"

INGESTD_PLUGIN("source_http", "0.1.0",
               ingestd::describe<ingestd::plugins::HttpSource>(
                   ingestd::Kind::kSource, "http", ingestd::plugins::kHttpSourceDoc,
                   ingestd::plugins::kHttpSourceOptions));

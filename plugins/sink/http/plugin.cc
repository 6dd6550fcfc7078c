#include "ingestd/plugin.h"
#include "http_sink.h"

INGESTD_PLUGIN("sink_http", "0.1.0",
               ingestd::describe<ingestd::plugins::HttpSink>(ingestd::Kind::kSink, "http",
                                                             ingestd::plugins::kHttpSinkDoc,
                                                             ingestd::plugins::kHttpSinkOptions));

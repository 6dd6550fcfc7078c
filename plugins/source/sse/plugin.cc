#include "ingestd/plugin.h"
#include "sse_source.h"

INGESTD_PLUGIN("source_sse", "0.1.0",
               ingestd::describe<ingestd::plugins::SseSource>(ingestd::Kind::kSource, "sse",
                                                              ingestd::plugins::kSseSourceDoc,
                                                              ingestd::plugins::kSseSourceOptions));

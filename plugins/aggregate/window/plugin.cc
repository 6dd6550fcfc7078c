#include "window_aggregator.h"

INGESTD_PLUGIN("aggregate_window", "0.1.0",
               ingestd::describe<ingestd::plugins::WindowAggregator>(
                   ingestd::Kind::kAggregator, "window", ingestd::plugins::kWindowAggregatorDoc,
                   ingestd::plugins::kWindowAggregatorOptions,
                   ingestd::plugins::kWindowSideOutputs))

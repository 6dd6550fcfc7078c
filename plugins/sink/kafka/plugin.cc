#include "ingestd/plugin.h"
#include "kafka_sink.h"

// Not single-worker: each worker has its own producer, so `workers: N` keeps N batches in flight.
// One by default, which keeps each partition's records in the order the sink received them.
INGESTD_PLUGIN("sink_kafka", "0.1.0",
               ingestd::describe<ingestd::plugins::KafkaSink>(ingestd::Kind::kSink, "kafka",
                                                              ingestd::plugins::kKafkaSinkDoc,
                                                              ingestd::plugins::kKafkaSinkOptions,
                                                              ingestd::kOrderedWrites));

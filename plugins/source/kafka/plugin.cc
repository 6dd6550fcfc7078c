#include "ingestd/plugin.h"
#include "kafka_source.h"

INGESTD_PLUGIN("source_kafka", "0.1.0",
               ingestd::describe<ingestd::plugins::KafkaSource>(
                   ingestd::Kind::kSource, "kafka", ingestd::plugins::kKafkaSourceDoc,
                   ingestd::plugins::kKafkaSourceOptions));

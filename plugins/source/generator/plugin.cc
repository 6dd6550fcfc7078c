#include "ingestd/plugin.h"
#include "generator_source.h"

INGESTD_PLUGIN("source_generator", "0.1.0",
               ingestd::describe<ingestd::plugins::GeneratorSource>(
                   ingestd::Kind::kSource, "generator", ingestd::plugins::kGeneratorSourceDoc,
                   ingestd::plugins::kGeneratorSourceOptions));

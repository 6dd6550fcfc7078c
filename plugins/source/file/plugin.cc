#include "ingestd/plugin.h"
#include "file_source.h"

INGESTD_PLUGIN("source_file", "0.1.0",
               ingestd::describe<ingestd::plugins::FileSource>(
                   ingestd::Kind::kSource, "file", ingestd::plugins::kFileSourceDoc,
                   ingestd::plugins::kFileSourceOptions));

#include "ingestd/plugin.h"
#include "procfs_source.h"

INGESTD_PLUGIN("source_procfs", "0.1.0",
               ingestd::describe<ingestd::plugins::ProcfsSource>(
                   ingestd::Kind::kSource, "procfs", ingestd::plugins::kProcfsSourceDoc,
                   ingestd::plugins::kProcfsSourceOptions));

#include "ingestd/plugin.h"
#include "file_sink.h"

INGESTD_PLUGIN("sink_file", "0.1.0",
               ingestd::describe<ingestd::plugins::FileSink>(ingestd::Kind::kSink, "file",
                                                             ingestd::plugins::kFileSinkDoc,
                                                             ingestd::plugins::kFileSinkOptions,
                                                             ingestd::kSingleWorker));

#include "ingestd/plugin.h"
#include "stdout_sink.h"

INGESTD_PLUGIN("sink_stdout", "0.1.0",
               ingestd::describe<ingestd::plugins::StdoutSink>(ingestd::Kind::kSink, "stdout",
                                                               ingestd::plugins::kStdoutSinkDoc,
                                                               ingestd::plugins::kStdoutSinkOptions,
                                                               ingestd::kSingleWorker));

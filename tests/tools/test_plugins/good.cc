#include "test_source.h"

INGESTD_PLUGIN("test-good", "1.0.0",
               ingestd::describe<ingestd::test_plugins::TestSource>(
                   ingestd::Kind::kSource, "test_source", "A test source.",
                   ingestd::test_plugins::kTestSourceOptions))

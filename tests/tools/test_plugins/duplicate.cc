#include "test_source.h"

INGESTD_PLUGIN("test-duplicate", "1.0.0",
               ingestd::describe<ingestd::test_plugins::TestSource>(
                   ingestd::Kind::kSource, "test_source", "The same type again.",
                   ingestd::test_plugins::kTestSourceOptions))

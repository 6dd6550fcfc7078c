#include "prometheus_parser.h"

INGESTD_PLUGIN("parse_prometheus", "0.1.0",
               ingestd::describe<ingestd::plugins::PrometheusParser>(
                   ingestd::Kind::kParser, "prometheus", ingestd::plugins::kPrometheusParserDoc,
                   ingestd::plugins::kPrometheusParserOptions))

#include "ingestd/plugin.h"
#include "scrape_source.h"

INGESTD_PLUGIN("source_prometheus_scrape", "0.1.0",
               ingestd::describe<ingestd::plugins::PrometheusScrapeSource>(
                   ingestd::Kind::kSource, "prometheus_scrape",
                   ingestd::plugins::kPrometheusScrapeSourceDoc,
                   ingestd::plugins::kPrometheusScrapeSourceOptions));

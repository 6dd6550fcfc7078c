#pragma once

#include "config/config.h"
#include "runtime/plugin_loader.h"

namespace ingestd::runtime {

// One loaded configuration: the plugins it was read with and the validated pipeline. Each running
// component holds the generation it was made from, so that its config and its plugin's code stay
// alive for as long as it runs, across reloads that keep it. The catalog is declared first so
// that it unloads the plugins last.
struct Generation {
  PluginCatalog catalog;
  config::Pipeline pipeline;
};

}  // namespace ingestd::runtime

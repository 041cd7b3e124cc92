#pragma once

#include "app/config.h"
#include "storage/migrations.h"
#include "storage/store.h"

namespace hawker::app {

/// Every module's migrations, as both `serve` and the CLI commands apply them.
storage::Schema hawker_schema();

/// The store as the configuration describes it: DATA_DIR/hawker.db with the whole schema.
/// `serve` and the CLI commands open the same file with the same settings.
storage::StoreOptions hawker_store_options(const Config& config);

}  // namespace hawker::app

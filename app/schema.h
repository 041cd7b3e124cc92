#pragma once

#include "storage/migrations.h"

namespace hawker::app {

/// Every module's migrations, as both `serve` and the CLI commands apply them.
storage::Schema hawker_schema();

}  // namespace hawker::app

#pragma once

#include "app/cli.h"
#include "app/config.h"

namespace hawker::app {

/// `hawker streamer add|rotate|revoke|list`: manages who may publish. Safe while `serve` runs:
/// both write the same SQLite file, each waiting for the other's write lock.
int streamer_command(const Config& config, const CommandLine& cl);

}  // namespace hawker::app

#pragma once

#include "app/config.h"

namespace hawker::app {

/// `hawker serve`: builds every module from the configuration, wires them together and runs the
/// loop until a signal stops it. Returns the process exit code.
int serve(const Config& config);

}  // namespace hawker::app

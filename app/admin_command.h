#pragma once

#include "app/cli.h"
#include "app/config.h"

namespace hawker::app {

/// `hawker admin init|token`: creates the seller's admin account (password from --password,
/// HAWKER_ADMIN_PASSWORD or a prompt on a terminal, stored with scrypt) and issues API tokens
/// (shown once, stored hashed).
int admin_command(const Config& config, const CommandLine& cl);

}  // namespace hawker::app

#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace hawker::app {

/// A command line split into words: `hawker streamer add a@b.c --name shop --data-dir d`
/// gives command {"streamer", "add"}-style positionals and flags {"name": "shop", ...}.
struct CommandLine {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  bool has(const std::string& flag) const { return flags.count(flag) > 0; }
};

/// Parses `--flag value`, `--flag=value` and boolean `--flag` (when `boolean_flags` names it).
Result<CommandLine> parse_command_line(int argc, const char* const* argv,
                                       const std::vector<std::string>& boolean_flags);

}  // namespace hawker::app

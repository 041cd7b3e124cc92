#include "app/cli.h"

#include <fmt/format.h>

#include <algorithm>

namespace hawker::app {

Result<CommandLine> parse_command_line(int argc, const char* const* argv,
                                       const std::vector<std::string>& boolean_flags) {
  CommandLine cl;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) cl.positional.emplace_back(argv[i]);
      break;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      cl.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      cl.flags[name.substr(0, eq)] = name.substr(eq + 1);
      continue;
    }
    if (std::find(boolean_flags.begin(), boolean_flags.end(), name) != boolean_flags.end()) {
      cl.flags[name] = "true";
      continue;
    }
    if (i + 1 >= argc) {
      return unexpected(ErrorCode::kInvalidArgument, fmt::format("flag --{} needs a value", name));
    }
    cl.flags[name] = argv[++i];
  }
  return cl;
}

}  // namespace hawker::app

// hawker: one binary that runs a live-commerce server. This file only dispatches subcommands.
#include <curl/curlver.h>
#include <fmt/format.h>
#include <openssl/opensslv.h>
#include <sqlite3.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>

extern "C" {
#include <libavcodec/version.h>
#include <libavformat/version.h>
}

#include "app/admin_command.h"
#include "app/cli.h"
#include "app/config.h"
#include "app/serve.h"
#include "app/streamer_command.h"
#include "core/log.h"

namespace hawker::app {
namespace {

constexpr const char* kUsage = R"(hawker: sell live from your own server

usage: hawker COMMAND [flags]

commands:
  serve            run the server (HTTP, RTMP ingest, storage)
  config           print the effective configuration as TOML (--keys: list every key)
  streamer         add, rotate, revoke or list streamers and their stream keys
  admin            create the seller's admin account (init) or an API token (token)
  version          print the version and the libraries hawker was built with
  help             show this text

flags shared by every command (each also settable as HAWKER_* or in the --config file):
  --config FILE            TOML configuration file
  --data-dir DIR           where data lives (default ./hawker-data)
  --http-listen HOST:PORT  HTTP address (default 0.0.0.0:8080)
  --rtmp-listen HOST:PORT  RTMP address (default 0.0.0.0:1935)
  `hawker config --keys` lists every other key.
)";

/// Flags that take no value.
const std::vector<std::string> kBooleanFlags = {"keys", "help"};

int print_version() {
  fmt::print("hawker {}\n", HAWKER_VERSION);
  fmt::print("libuv {}, SQLite {}, {}, libcurl {}, libavformat {}, libavcodec {}\n",
             uv_version_string(), sqlite3_libversion(), OPENSSL_VERSION_TEXT, LIBCURL_VERSION,
             AV_STRINGIFY(LIBAVFORMAT_VERSION), AV_STRINGIFY(LIBAVCODEC_VERSION));
  return 0;
}

int print_keys() {
  fmt::print("| key | environment | flag | expected | meaning |\n|---|---|---|---|---|\n");
  Config defaults;
  for (const auto& k : config_keys()) {
    fmt::print("| `{}` | `{}` | `--{}` | {} | {} (default `{}`) |\n", k.key, k.env_name(),
               k.flag_name(), k.expected, k.help, k.get(defaults));
  }
  return 0;
}

/// Flags that belong to a subcommand rather than to the configuration.
std::map<std::string, std::string> config_flags(const CommandLine& cl) {
  auto flags = cl.flags;
  for (const auto& b : kBooleanFlags) flags.erase(b);
  for (const auto& own : {"name", "login", "password", "role"}) flags.erase(own);
  return flags;
}

int run(int argc, char** argv) {
  auto cl = parse_command_line(argc, argv, kBooleanFlags);
  if (!cl) {
    fmt::print(stderr, "hawker: {}\n\n{}", cl.error().message, kUsage);
    return 2;
  }
  if (cl->positional.empty() || cl->positional[0] == "help" || cl->has("help")) {
    fmt::print("{}", kUsage);
    return cl->positional.empty() && !cl->has("help") ? 2 : 0;
  }
  const std::string& command = cl->positional[0];
  if (command == "version") return print_version();
  if (command == "config" && cl->has("keys")) return print_keys();

  auto config = load_config(config_flags(*cl), [](const char* name) { return std::getenv(name); });
  if (!config) {
    fmt::print(stderr, "hawker: configuration refused: {}\n", config.error().message);
    return 2;
  }
  log::Level level = log::Level::kInfo;
  log::parse_level(config->log_level, level);
  // One-shot commands print their answer on stdout; routine storage lines would only be noise.
  if (command != "serve" && level == log::Level::kInfo) level = log::Level::kWarn;
  log::configure(level, config->log_format == "json" ? log::Format::kJson : log::Format::kText);

  if (command == "config") {
    fmt::print("{}", render_config(*config));
    return 0;
  }
  if (command == "serve") return serve(*config);
  if (command == "streamer") return streamer_command(*config, *cl);
  if (command == "admin") return admin_command(*config, *cl);
  fmt::print(stderr, "hawker: unknown command \"{}\"\n\n{}", command, kUsage);
  return 2;
}

}  // namespace
}  // namespace hawker::app

int main(int argc, char** argv) { return hawker::app::run(argc, argv); }

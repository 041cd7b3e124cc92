#include "app/admin_command.h"

#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/schema.h"
#include "commerce/password.h"
#include "commerce/seller_auth.h"
#include "core/clock.h"
#include "core/loop.h"
#include "storage/store.h"

namespace hawker::app {
namespace {

constexpr size_t kMinPasswordLength = 10;

int usage() {
  fmt::print(stderr,
             "usage:\n"
             "  hawker admin init [--login NAME] [--password PW]   create the admin account or "
             "set its password\n"
             "                    (else HAWKER_ADMIN_PASSWORD, else a prompt on a terminal)\n"
             "  hawker admin token [--role admin|support]          print a new API token "
             "(shown once)\n");
  return 2;
}

/// Reads a line from the terminal without echo.
std::optional<std::string> prompt_password(const char* prompt) {
  if (::isatty(STDIN_FILENO) == 0) return std::nullopt;
  fmt::print(stderr, "{}", prompt);
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::string line;
  std::getline(std::cin, line);
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  fmt::print(stderr, "\n");
  return line;
}

std::optional<std::string> password_from(const CommandLine& cl) {
  if (cl.has("password")) return cl.flags.at("password");
  if (const char* env = std::getenv("HAWKER_ADMIN_PASSWORD")) return std::string(env);
  auto first = prompt_password("admin password: ");
  if (!first) return std::nullopt;
  auto again = prompt_password("again: ");
  if (!again || *again != *first) {
    fmt::print(stderr, "hawker admin: the passwords differ\n");
    return std::nullopt;
  }
  return first;
}

}  // namespace

int admin_command(const Config& config, const CommandLine& cl) {
  if (cl.positional.size() != 2) return usage();
  const std::string& verb = cl.positional[1];
  if (verb != "init" && verb != "token") return usage();

  std::string password_hash;
  std::string login = cl.has("login") ? cl.flags.at("login") : "admin";
  if (verb == "init") {
    auto password = password_from(cl);
    if (!password) {
      fmt::print(stderr,
                 "hawker admin init: give the password with --password, HAWKER_ADMIN_PASSWORD "
                 "or on a terminal\n");
      return 1;
    }
    if (password->size() < kMinPasswordLength) {
      fmt::print(stderr, "hawker admin init: the password needs at least {} characters\n",
                 kMinPasswordLength);
      return 1;
    }
    if (login.empty() || login.size() > 64) {
      fmt::print(stderr, "hawker admin init: --login must be 1 to 64 characters\n");
      return 1;
    }
    auto hash = commerce::hash_password(*password);
    if (!hash) {
      fmt::print(stderr, "hawker admin init: {}\n", hash.error().message);
      return 3;
    }
    password_hash = std::move(*hash);
  }

  Loop loop;
  storage::StoreOptions options = hawker_store_options(config);
  options.reader_threads = 1;
  storage::Store store(loop, options);
  if (auto s = store.open(); !s) {
    fmt::print(stderr, "hawker admin: {}\n", s.error().message);
    return 3;
  }
  int64_t now = SystemClock::instance().wall_ms();
  int code = 0;
  if (verb == "init") {
    Status s = store.write_sync([&](storage::Database& db) {
      return commerce::set_admin_password(db, login, password_hash, now);
    });
    if (s) {
      fmt::print("{}\n", nlohmann::json{{"login", login}, {"role", "admin"}}.dump(2));
    } else {
      fmt::print(stderr, "hawker admin init: {}\n", s.error().message);
      code = 3;
    }
  } else {
    std::string role = cl.has("role") ? cl.flags.at("role") : "admin";
    auto issued = store.write_sync<commerce::IssuedApiToken>(
        [&](storage::Database& db) { return commerce::issue_api_token(db, role, now); });
    if (issued) {
      // The only time the token is shown: it is stored as its SHA-256.
      fmt::print("{}\n",
                 nlohmann::json{
                     {"id", issued->id}, {"role", issued->role}, {"token", issued->token.reveal()}}
                     .dump(2));
    } else {
      fmt::print(stderr, "hawker admin token: {}\n", issued.error().message);
      code = issued.error().code == ErrorCode::kInvalidArgument ? 1 : 3;
    }
  }
  store.close();
  return code;
}

}  // namespace hawker::app

#include "app/config.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/cli.h"

using namespace hawker;
using namespace hawker::app;

namespace {
std::function<const char*(const char*)> env_of(std::map<std::string, std::string> vars) {
  auto owned = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [owned](const char* name) -> const char* {
    auto it = owned->find(name);
    return it == owned->end() ? nullptr : it->second.c_str();
  };
}

std::string write_temp(const std::string& text) {
  auto path = std::filesystem::temp_directory_path() /
              ("hawker-config-test-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << text;
  return path.string();
}
}  // namespace

TEST_CASE("defaults are the embedded ones") {
  auto c = load_config({}, env_of({}));
  REQUIRE(c);
  CHECK(c->data_dir == "./hawker-data");
  CHECK(c->http_listen.port == 8080);
  CHECK(c->rtmp_listen.port == 1935);
  CHECK(c->storage_synchronous == "full");
  CHECK(c->effective_public_url() == "http://localhost:8080");
}

TEST_CASE("file < environment < flags") {
  std::string file = write_temp(
      "data_dir = \"/srv/a\"\n[http]\nlisten = \"127.0.0.1:9000\"\nmax_header_bytes = \"8KiB\"\n"
      "[rtmp]\nlisten = \":1940\"\n");
  auto c = load_config({{"config", file}, {"rtmp-listen", "127.0.0.1:0"}},
                       env_of({{"HAWKER_HTTP_LISTEN", "127.0.0.1:9100"}}));
  REQUIRE(c);
  CHECK(c->data_dir == "/srv/a");
  CHECK(c->http_listen.to_string() == "127.0.0.1:9100");
  CHECK(c->http_max_header_bytes == 8192);
  CHECK(c->rtmp_listen.to_string() == "127.0.0.1:0");
  std::filesystem::remove(file);
}

TEST_CASE("a bad value names the key and the expected form") {
  auto c = load_config({{"http-listen", "nonsense"}}, env_of({}));
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("http.listen") != std::string::npos);
  CHECK(c.error().message.find("HOST:PORT") != std::string::npos);

  auto e = load_config({}, env_of({{"HAWKER_HTTP_IDLE_TIMEOUT", "soon"}}));
  REQUIRE_FALSE(e);
  CHECK(e.error().message.find("HAWKER_HTTP_IDLE_TIMEOUT") != std::string::npos);
  CHECK(e.error().message.find("duration") != std::string::npos);

  auto u = load_config({{"no-such-flag", "1"}}, env_of({}));
  REQUIRE_FALSE(u);
  CHECK(u.error().message.find("--no-such-flag") != std::string::npos);
}

TEST_CASE("unknown keys and broken TOML in the file are refused") {
  std::string file = write_temp("[http]\nlisten = \"127.0.0.1:1\"\nspeed = 3\n");
  auto c = load_config({{"config", file}}, env_of({}));
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("http.speed") != std::string::npos);
  std::ofstream(file) << "[http\n";
  auto broken = load_config({{"config", file}}, env_of({}));
  REQUIRE_FALSE(broken);
  CHECK(broken.error().message.find("line 1") != std::string::npos);
  std::filesystem::remove(file);
}

TEST_CASE("the rendered configuration reads back to the same values") {
  auto c =
      load_config({{"http-listen", "127.0.0.1:8123"}, {"http-idle-timeout", "90s"}}, env_of({}));
  REQUIRE(c);
  std::string file = write_temp(render_config(*c));
  auto back = load_config({{"config", file}}, env_of({}));
  REQUIRE(back);
  CHECK(back->http_listen.to_string() == "127.0.0.1:8123");
  CHECK(back->http_idle_timeout_ms == 90'000);
  std::filesystem::remove(file);
}

TEST_CASE("units parse") {
  CHECK(*parse_duration_ms("250ms") == 250);
  CHECK(*parse_duration_ms("2s") == 2000);
  CHECK(*parse_duration_ms("10m") == 600'000);
  CHECK(*parse_duration_ms("1500") == 1500);
  CHECK_FALSE(parse_duration_ms("-1s"));
  CHECK(*parse_size_bytes("64KiB") == 65536);
  CHECK(*parse_size_bytes("1MiB") == 1048576);
  CHECK_FALSE(parse_size_bytes("lots"));
  CHECK(parse_host_port("[::1]:80")->host == "::1");
  CHECK(parse_host_port(":1935")->host == "0.0.0.0");
  CHECK_FALSE(parse_host_port("localhost:70000"));
}

TEST_CASE("command lines split into positionals and flags") {
  const char* argv[] = {"hawker", "streamer", "add",           "a@b.c",
                        "--name", "shop",     "--data-dir=/d", "--json"};
  auto cl = parse_command_line(8, argv, {"json"});
  REQUIRE(cl);
  CHECK(cl->positional == std::vector<std::string>{"streamer", "add", "a@b.c"});
  CHECK(cl->flags.at("name") == "shop");
  CHECK(cl->flags.at("data-dir") == "/d");
  CHECK(cl->flags.at("json") == "true");
  const char* bad[] = {"hawker", "serve", "--http-listen"};
  CHECK_FALSE(parse_command_line(3, bad, {}));
}

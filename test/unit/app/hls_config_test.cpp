#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "app/config.h"

namespace hawker::app {
namespace {

const char* no_env(const char*) { return nullptr; }

std::string write_toml(const std::string& text) {
  auto path = std::filesystem::temp_directory_path() /
              ("hawker-hls-config-test-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << text;
  return path.string();
}

TEST_CASE("hls targets: defaults, flags, and per-channel tables that fall back to the server") {
  auto plain = load_config({}, no_env);
  REQUIRE(plain);
  CHECK(plain->hls_part_target_ms == 250);
  CHECK(plain->hls_segment_target_ms == 1000);
  CHECK(plain->hls_max_segment_ms == 4000);

  std::string file = write_toml(
      "[hls]\npart-target = \"300ms\"\n\n"
      "[hls.channels.night-market]\npart_target = \"500ms\"\nmax-segment = \"6s\"\n");
  auto config = load_config({{"config", file}, {"hls-segment-target", "2s"}}, no_env);
  REQUIRE_MESSAGE(config, config.error().message);
  HlsTargets server = config->hls_targets("");
  CHECK(server.part_target_ms == 300);
  CHECK(server.segment_target_ms == 2000);
  CHECK(server.max_segment_ms == 4000);
  HlsTargets night = config->hls_targets("night-market");
  CHECK(night.part_target_ms == 500);
  CHECK(night.segment_target_ms == 2000);  // the server's, set by a flag after the file
  CHECK(night.max_segment_ms == 6000);
  CHECK(config->hls_targets("other").part_target_ms == 300);

  // `hawker config` output reads back with the channel table.
  std::string rendered = render_config(*config);
  CHECK(rendered.find("[hls.channels.night-market]") != std::string::npos);
  std::string again_file = write_toml(rendered);
  auto again = load_config({{"config", again_file}}, no_env);
  REQUIRE_MESSAGE(again, again.error().message);
  CHECK(again->hls_targets("night-market").max_segment_ms == 6000);
  CHECK(again->hls_targets("").segment_target_ms == 2000);
  std::filesystem::remove(file);
}

TEST_CASE("hls targets: part < segment <= max, bounds, and unknown channel keys are refused") {
  auto r = load_config({{"hls-part-target", "1500ms"}}, no_env);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("part-target < segment-target <= max-segment") != std::string::npos);
  CHECK_FALSE(load_config({{"hls-segment-target", "5s"}}, no_env));  // beyond max-segment 4s
  CHECK_FALSE(load_config({{"hls-part-target", "50ms"}}, no_env));
  CHECK_FALSE(load_config({{"hls-max-segment", "31s"}}, no_env));
  CHECK(load_config({{"hls-segment-target", "4s"}}, no_env));  // equal to max is fine

  std::string file = write_toml("[hls.channels.x]\nbogus = \"1s\"\n");
  r = load_config({{"config", file}}, no_env);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("hls.channels.x.bogus") != std::string::npos);

  file = write_toml("[hls.channels.x]\nsegment-target = \"5s\"\n");
  r = load_config({{"config", file}}, no_env);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("[hls.channels.x]") != std::string::npos);

  file = write_toml("[hls.channels]\npart-target = \"500ms\"\n");
  CHECK_FALSE(load_config({{"config", file}}, no_env));
  std::filesystem::remove(file);
}

TEST_CASE("a channel can have its own ladder, or none, and reads back from `hawker config`") {
  std::string file = write_toml(
      "[transcode]\nladder = \"720:3000:30,360:800:30\"\n\n"
      "[hls.channels.flagship]\nladder = \"1080:6000:60,720:3000:30,480:1400:30\"\n\n"
      "[hls.channels.phone-only]\nladder = \"\"\npart-target = \"250ms\"\n");
  auto config = load_config({{"config", file}}, no_env);
  REQUIRE_MESSAGE(config, config.error().message);
  CHECK(config->transcode_ladder == "720:3000:30,360:800:30");
  CHECK(config->channel_ladders.at("flagship") == "1080:6000:60,720:3000:30,480:1400:30");
  CHECK(config->channel_ladders.at("phone-only").empty());
  CHECK(config->channel_ladders.count("other") == 0);

  std::string again_file = write_toml(render_config(*config));
  auto again = load_config({{"config", again_file}}, no_env);
  REQUIRE_MESSAGE(again, again.error().message);
  CHECK(again->channel_ladders == config->channel_ladders);
  CHECK(again->hls_targets("phone-only").part_target_ms == 250);

  file = write_toml("[hls.channels.x]\nladder = \"360:800:30,720:3000:30\"\n");
  auto bad = load_config({{"config", file}}, no_env);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("heights must decrease") != std::string::npos);
  CHECK(bad.error().message.find("hls.channels.x.ladder") != std::string::npos);
  std::filesystem::remove(file);
  std::filesystem::remove(again_file);
}

}  // namespace
}  // namespace hawker::app

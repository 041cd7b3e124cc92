#include "core/log.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

using namespace hawker;

TEST_CASE("JSON escaping writes what nlohmann writes, and its size is known beforehand") {
  std::string every_byte;
  for (int c = 1; c < 256; ++c) every_byte += static_cast<char>(c);
  for (std::string s : {std::string(), std::string("plain"), std::string("Zo\xc3\xab \"Q\" \\ /"),
                        std::string("\b\f\n\r\t\x01\x1f\x7f", 8), std::string(1, '\0'),
                        every_byte.substr(0, 127)}) {
    CAPTURE(s);
    std::string escaped = log::json_escape(s);
    // nlohmann prints the string in quotes (bytes >= 0x80 as they are, when valid UTF-8).
    CHECK('"' + escaped + '"' == nlohmann::json(s).dump());
    CHECK(log::json_escaped_size(s) == escaped.size());
    fmt::memory_buffer appended;
    appended.append(std::string_view("x"));
    log::append_json_escaped(appended, s);
    CHECK(fmt::to_string(appended) == "x" + escaped);
  }
  // Bytes >= 0x80 pass through unchanged, whatever they are.
  std::string high = every_byte.substr(127);
  CHECK(log::json_escape(high) == high);
  CHECK(log::json_escaped_size(high) == high.size());
}

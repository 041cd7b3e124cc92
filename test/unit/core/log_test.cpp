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

TEST_CASE("JSON escaping finds a byte to escape wherever it sits in the eight-byte words") {
  // Every length up to three words, with each kind of byte to escape (and a byte just outside
  // each kind's range) at every position, alone and next to a second one.
  const std::string specials = std::string("\"\\\x1f\x01\n", 5) + std::string(1, '\0');
  const std::string near_misses = "!# []\x7f";
  for (size_t length = 1; length <= 24; ++length) {
    for (size_t at = 0; at < length; ++at) {
      for (char c : specials + near_misses) {
        std::string s(length, 'a');
        s[at] = c;
        if (at + 3 < length) s[at + 3] = '"';
        CAPTURE(s);
        std::string escaped = log::json_escape(s);
        CHECK('"' + escaped + '"' == nlohmann::json(s).dump());
        CHECK(log::json_escaped_size(s) == escaped.size());
      }
    }
  }
}

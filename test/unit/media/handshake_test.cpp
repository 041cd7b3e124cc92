#include "media/rtmp/handshake.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "core/secret.h"

using namespace hawker;
using namespace hawker::media::rtmp;

namespace {

void counting_random(std::span<uint8_t> out) {
  uint8_t v = 7;
  for (auto& b : out) b = v = static_cast<uint8_t>(v * 31 + 11);
}

std::string_view chars(std::span<const uint8_t> s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

/// C0+C1 as a Flash Player 9+ client builds it: version set, digest under the player key.
std::vector<uint8_t> complex_c0c1(DigestScheme scheme) {
  std::vector<uint8_t> out(1 + kHandshakeSize);
  out[0] = 3;
  std::span<uint8_t> c1(out.data() + 1, kHandshakeSize);
  for (size_t i = 0; i < c1.size(); ++i) c1[i] = static_cast<uint8_t>(i * 13 + 5);
  c1[4] = 0x80;
  c1[5] = 0x00;
  c1[6] = 0x07;
  c1[7] = 0x02;
  size_t at = digest_offset(c1, scheme);
  std::string digest = packet_digest(c1, at, flash_player_key().substr(0, 30));
  std::copy(digest.begin(), digest.end(), c1.begin() + static_cast<long>(at));
  return out;
}

}  // namespace

TEST_CASE("simple handshake: S0 version 3, S1 zero version, S2 echoes C1") {
  ServerHandshake hs(counting_random);
  std::vector<uint8_t> c0c1(1 + kHandshakeSize, 0);
  c0c1[0] = 3;
  for (size_t i = 9; i < c0c1.size(); ++i) c0c1[i] = static_cast<uint8_t>(i);
  std::vector<uint8_t> out;
  // Byte-at-a-time delivery must work as well as one read.
  for (size_t i = 0; i < 100; ++i) {
    auto used = hs.feed(std::span<const uint8_t>(&c0c1[i], 1), out);
    REQUIRE(used);
    CHECK(*used == 1);
  }
  CHECK(out.empty());
  auto used = hs.feed(std::span<const uint8_t>(c0c1).subspan(100), out);
  REQUIRE(used);
  CHECK(hs.state() == ServerHandshake::State::kWaitC2);
  CHECK_FALSE(hs.complex());
  REQUIRE(out.size() == 1 + 2 * kHandshakeSize);
  CHECK(out[0] == 3);
  CHECK(std::all_of(out.begin() + 5, out.begin() + 9, [](uint8_t b) { return b == 0; }));
  CHECK(std::equal(out.begin() + 1 + kHandshakeSize, out.end(), c0c1.begin() + 1));

  // C2 followed by the first chunk bytes: only C2 belongs to the handshake.
  std::vector<uint8_t> c2(kHandshakeSize + 5, 0xab);
  out.clear();
  used = hs.feed(c2, out);
  REQUIRE(used);
  CHECK(*used == kHandshakeSize);
  CHECK(hs.done());
  CHECK(out.empty());
}

TEST_CASE("complex handshake answers with digests the client can validate") {
  for (DigestScheme scheme : {DigestScheme::kScheme0, DigestScheme::kScheme1}) {
    CAPTURE(static_cast<int>(scheme));
    auto c0c1 = complex_c0c1(scheme);
    std::span<const uint8_t> c1(c0c1.data() + 1, kHandshakeSize);
    REQUIRE(find_digest(c1, flash_player_key().substr(0, 30)) == scheme);

    ServerHandshake hs(counting_random);
    std::vector<uint8_t> out;
    auto used = hs.feed(c0c1, out);
    REQUIRE(used);
    CHECK(hs.complex());
    REQUIRE(out.size() == 1 + 2 * kHandshakeSize);
    std::span<const uint8_t> s1(out.data() + 1, kHandshakeSize);
    std::span<const uint8_t> s2(out.data() + 1 + kHandshakeSize, kHandshakeSize);
    CHECK(s1[4] != 0);

    // The client checks S1's digest under the open part of the server key...
    CHECK(find_digest(s1, flash_media_server_key().substr(0, 36)) == scheme);
    // ...and S2's signature under a key derived from its own C1 digest.
    size_t c1_digest_at = digest_offset(c1, scheme);
    std::string key = hmac_sha256(flash_media_server_key(), chars(c1.subspan(c1_digest_at, 32)));
    std::string signature = hmac_sha256(key, chars(s2.subspan(0, kHandshakeSize - 32)));
    CHECK(signature == chars(s2.subspan(kHandshakeSize - 32)));
  }
}

TEST_CASE("a versioned C1 without a valid digest gets the simple handshake") {
  auto c0c1 = complex_c0c1(DigestScheme::kScheme1);
  c0c1[1 + digest_offset(std::span<const uint8_t>(c0c1).subspan(1), DigestScheme::kScheme1)] ^= 1;
  ServerHandshake hs(counting_random);
  std::vector<uint8_t> out;
  REQUIRE(hs.feed(c0c1, out));
  CHECK_FALSE(hs.complex());
  CHECK(std::equal(out.begin() + 1 + kHandshakeSize, out.end(), c0c1.begin() + 1));
}

TEST_CASE("handshake refuses versions other than 3") {
  for (uint8_t version : {0, 6, 0x16, 0x47}) {
    ServerHandshake hs;
    std::vector<uint8_t> out;
    std::vector<uint8_t> bytes{version, 0, 0, 0};
    auto used = hs.feed(bytes, out);
    REQUIRE_FALSE(used);
    CHECK(used.error().code == ErrorCode::kProtocol);
    CHECK(hs.state() == ServerHandshake::State::kFailed);
    CHECK(out.empty());
  }
}

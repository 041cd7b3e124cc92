#include "media/rtmp/handshake.h"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "core/secret.h"

namespace hawker::media::rtmp {

namespace {

constexpr uint8_t kRtmpVersion = 3;
constexpr size_t kDigestSize = 32;
constexpr size_t kPlayerKeyOpenPart = 30;
constexpr size_t kServerKeyOpenPart = 36;
// A Flash Media Server version; a non-zero version tells the client S1 carries a digest.
constexpr uint8_t kServerVersion[4] = {0x04, 0x05, 0x00, 0x01};

constexpr uint8_t kKeyTail[32] = {0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0,
                                  0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80,
                                  0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE};

std::string make_key(std::string_view open_part) {
  std::string key(open_part);
  key.append(reinterpret_cast<const char*>(kKeyTail), sizeof kKeyTail);
  return key;
}

std::string_view as_chars(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

void openssl_random(std::span<uint8_t> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    // The handshake bytes need no secrecy; any filler keeps the protocol going.
    std::fill(out.begin(), out.end(), 0x5a);
  }
}

}  // namespace

std::string_view flash_player_key() {
  static const std::string key = make_key("Genuine Adobe Flash Player 001");
  return key;
}

std::string_view flash_media_server_key() {
  static const std::string key = make_key("Genuine Adobe Flash Media Server 001");
  return key;
}

size_t digest_offset(std::span<const uint8_t> packet, DigestScheme scheme) {
  size_t base = scheme == DigestScheme::kScheme0 ? 772 : 8;
  size_t sum = packet[base] + packet[base + 1] + packet[base + 2] + packet[base + 3];
  return sum % 728 + base + 4;
}

std::string packet_digest(std::span<const uint8_t> packet, size_t offset, std::string_view key) {
  std::string message;
  message.reserve(packet.size() - kDigestSize);
  message.append(as_chars(packet.subspan(0, offset)));
  message.append(as_chars(packet.subspan(offset + kDigestSize)));
  return hmac_sha256(key, message);
}

std::optional<DigestScheme> find_digest(std::span<const uint8_t> packet, std::string_view key) {
  for (DigestScheme scheme : {DigestScheme::kScheme1, DigestScheme::kScheme0}) {
    size_t offset = digest_offset(packet, scheme);
    std::string expected = packet_digest(packet, offset, key);
    if (constant_time_equal(expected, as_chars(packet.subspan(offset, kDigestSize)))) {
      return scheme;
    }
  }
  return std::nullopt;
}

ServerHandshake::ServerHandshake(RandomSource random)
    : random_(random ? std::move(random) : RandomSource(openssl_random)) {}

Result<size_t> ServerHandshake::feed(std::span<const uint8_t> in, std::vector<uint8_t>& out) {
  size_t used = 0;
  while (used < in.size()) {
    if (state_ == State::kDone) break;
    if (state_ == State::kFailed) {
      return unexpected(ErrorCode::kProtocol, "handshake: already failed");
    }
    size_t want = (state_ == State::kWaitC0C1 ? 1 + kHandshakeSize : kHandshakeSize);
    size_t take = std::min(want - buffer_.size(), in.size() - used);
    buffer_.insert(buffer_.end(), in.begin() + static_cast<std::ptrdiff_t>(used),
                   in.begin() + static_cast<std::ptrdiff_t>(used + take));
    used += take;
    if (state_ == State::kWaitC0C1 && !buffer_.empty() && buffer_[0] != kRtmpVersion) {
      state_ = State::kFailed;
      return unexpected(ErrorCode::kProtocol,
                        fmt::format("handshake: unsupported RTMP version {}", buffer_[0]));
    }
    if (buffer_.size() < want) break;
    if (state_ == State::kWaitC0C1) {
      reply(out);
      state_ = State::kWaitC2;
    } else {
      // C2 echoes S1 (or signs it); clients disagree on its exact form, so it is not checked.
      state_ = State::kDone;
    }
    buffer_.clear();
  }
  return used;
}

void ServerHandshake::reply(std::vector<uint8_t>& out) {
  std::span<const uint8_t> c1(buffer_.data() + 1, kHandshakeSize);
  bool client_versioned = c1[4] != 0 || c1[5] != 0 || c1[6] != 0 || c1[7] != 0;
  if (client_versioned) {
    scheme_ = find_digest(c1, flash_player_key().substr(0, kPlayerKeyOpenPart));
  }

  out.push_back(kRtmpVersion);
  size_t s1_at = out.size();
  out.resize(s1_at + 2 * kHandshakeSize);
  std::span<uint8_t> s1(out.data() + s1_at, kHandshakeSize);
  std::span<uint8_t> s2(out.data() + s1_at + kHandshakeSize, kHandshakeSize);

  // S1: our time (zero: only differences matter), version, random.
  std::fill(s1.begin(), s1.begin() + 4, 0);
  random_(s1.subspan(8));
  if (!scheme_) {
    std::fill(s1.begin() + 4, s1.begin() + 8, 0);
    std::copy(c1.begin(), c1.end(), s2.begin());
    return;
  }
  std::copy(std::begin(kServerVersion), std::end(kServerVersion), s1.begin() + 4);
  size_t s1_digest_at = digest_offset(s1, *scheme_);
  std::string s1_digest =
      packet_digest(s1, s1_digest_at, flash_media_server_key().substr(0, kServerKeyOpenPart));
  std::copy(s1_digest.begin(), s1_digest.end(), s1.begin() + s1_digest_at);

  // S2: random, signed with a key derived from the client's C1 digest.
  size_t c1_digest_at = digest_offset(c1, *scheme_);
  std::string key =
      hmac_sha256(flash_media_server_key(), as_chars(c1.subspan(c1_digest_at, kDigestSize)));
  random_(s2.subspan(0, kHandshakeSize - kDigestSize));
  std::string signature = hmac_sha256(key, as_chars(s2.subspan(0, kHandshakeSize - kDigestSize)));
  std::copy(signature.begin(), signature.end(), s2.end() - kDigestSize);
}

}  // namespace hawker::media::rtmp

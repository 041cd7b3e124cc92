#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace hawker::media::rtmp {

/// Size of C1, S1, C2 and S2.
inline constexpr size_t kHandshakeSize = 1536;

/// Where a digest sits in a "complex" (Flash Player 9+) handshake packet: scheme 0 places the
/// key block first and the digest block at byte 772, scheme 1 places the digest block at byte 8.
enum class DigestScheme : uint8_t { kScheme0, kScheme1 };

/// The offset of the 32-byte digest inside a 1536-byte handshake packet under `scheme`.
size_t digest_offset(std::span<const uint8_t> packet, DigestScheme scheme);
/// HMAC-SHA256 under `key` of `packet` without the 32 bytes at `offset`.
std::string packet_digest(std::span<const uint8_t> packet, size_t offset, std::string_view key);
/// The scheme whose digest in `packet` validates under `key`, if any.
std::optional<DigestScheme> find_digest(std::span<const uint8_t> packet, std::string_view key);

/// The Flash Player key: its first 30 bytes sign C1, all 62 sign C2.
std::string_view flash_player_key();
/// The Flash Media Server key: its first 36 bytes sign S1, all 68 derive the S2 signing key.
std::string_view flash_media_server_key();

/// Server side of the RTMP handshake. C0+C1 in -> S0+S1+S2 out, then C2 in.
///
/// A client whose C1 carries a valid digest (librtmp/OBS, FFmpeg) gets a digest-signed S1 and an
/// S2 signed with a key derived from its own digest; any other client gets the simple handshake
/// (S2 echoes C1), which is what GStreamer's rtmp2 and the RTMP specification expect.
class ServerHandshake {
 public:
  enum class State { kWaitC0C1, kWaitC2, kDone, kFailed };

  /// `random` fills a buffer with random bytes; tests inject a deterministic one.
  using RandomSource = std::function<void(std::span<uint8_t>)>;
  explicit ServerHandshake(RandomSource random = {});

  /// Consumes handshake bytes from `in`, appending the server's reply to `out`. Returns how many
  /// bytes of `in` belong to the handshake; bytes after that (once done()) are chunk data.
  Result<size_t> feed(std::span<const uint8_t> in, std::vector<uint8_t>& out);

  State state() const { return state_; }
  bool done() const { return state_ == State::kDone; }
  /// Whether the client used the digest handshake.
  bool complex() const { return scheme_.has_value(); }

 private:
  void reply(std::vector<uint8_t>& out);

  RandomSource random_;
  State state_ = State::kWaitC0C1;
  std::vector<uint8_t> buffer_;
  std::optional<DigestScheme> scheme_;
};

}  // namespace hawker::media::rtmp

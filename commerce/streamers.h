#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/secret.h"
#include "storage/migrations.h"
#include "storage/sqlite.h"

namespace hawker::commerce {

/// Stream keys look like `hwk_` and 32 URL-safe characters (192 random bits).
inline constexpr std::string_view kStreamKeyPrefix = "hwk_";

enum class StreamerStatus { kActive, kRevoked };
const char* to_string(StreamerStatus s);

/// Someone who publishes shows. The stream key itself is never stored: only its SHA-256 and its
/// last four characters, so the seller can tell keys apart.
struct Streamer {
  int64_t id = 0;
  std::string email;
  /// Public name, used in playback URLs: lower-case letters, digits and '-', 2 to 40 long.
  std::string channel;
  StreamerStatus status = StreamerStatus::kActive;
  std::string key_hint;
  int64_t created_at_ms = 0;
  int64_t key_rotated_at_ms = 0;
};

/// A streamer with a key just issued: the only moment the key exists in clear.
struct IssuedKey {
  Streamer streamer;
  Secret key;
};

/// The streamer tables (migrations 100-109 of the commerce block).
std::span<const storage::Migration> streamer_migrations();

bool valid_channel_name(std::string_view channel);
bool valid_email(std::string_view email);

/// Creates a streamer with a fresh key. kAlreadyExists when the email or channel is taken.
Result<IssuedKey> add_streamer(storage::Database& db, std::string_view email,
                               std::string_view channel, int64_t now_ms);
/// Issues a new key for the channel; the old one stops matching at once. Reactivates a revoked
/// streamer.
Result<IssuedKey> rotate_stream_key(storage::Database& db, std::string_view channel,
                                    int64_t now_ms);
/// Forgets the channel's key: nothing publishes on it until the key is rotated.
Result<Streamer> revoke_streamer(storage::Database& db, std::string_view channel, int64_t now_ms);
Result<std::vector<Streamer>> list_streamers(storage::Database& db);
Result<std::optional<Streamer>> find_streamer_by_channel(storage::Database& db,
                                                         std::string_view channel);
Result<std::optional<Streamer>> find_streamer_by_email(storage::Database& db,
                                                       std::string_view email);

/// The active streamer whose key this is, or nullopt. The key is looked up by its hash and the
/// stored hash compared in constant time; a malformed key never reaches the database.
Result<std::optional<Streamer>> find_streamer_by_key(storage::Database& db, const Secret& key);

/// The hash under which a key is stored.
std::string stream_key_hash(const Secret& key);

}  // namespace hawker::commerce

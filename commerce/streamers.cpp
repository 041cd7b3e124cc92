#include "commerce/streamers.h"

#include <fmt/format.h>

namespace hawker::commerce {
namespace {

constexpr storage::Migration kMigrations[] = {
    {100, "streamers", R"sql(
CREATE TABLE streamers (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL COLLATE NOCASE UNIQUE,
  channel TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
  key_hash TEXT UNIQUE,
  key_hint TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  key_rotated_at_ms INTEGER NOT NULL
);
)sql"},
};

constexpr std::string_view kColumns =
    "id, email, channel, status, key_hint, created_at_ms, key_rotated_at_ms";

Streamer read_streamer(const storage::Statement& s) {
  Streamer st;
  st.id = s.column_int64(0);
  st.email = std::string(s.column_text(1));
  st.channel = std::string(s.column_text(2));
  st.status = s.column_text(3) == "active" ? StreamerStatus::kActive : StreamerStatus::kRevoked;
  st.key_hint = std::string(s.column_text(4));
  st.created_at_ms = s.column_int64(5);
  st.key_rotated_at_ms = s.column_int64(6);
  return st;
}

Result<std::optional<Streamer>> find_one(storage::Database& db, std::string_view where,
                                         std::string_view value) {
  auto stmt = db.cached(fmt::format("SELECT {} FROM streamers WHERE {} = ?", kColumns, where));
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, value);
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone) return std::optional<Streamer>{};
  return std::optional<Streamer>{read_streamer(**stmt)};
}

Result<Secret> new_key() { return random_token(kStreamKeyPrefix, 24); }

std::string hint_of(const Secret& key) {
  const std::string& k = key.reveal();
  return k.size() > 4 ? k.substr(k.size() - 4) : std::string();
}

}  // namespace

const char* to_string(StreamerStatus s) {
  return s == StreamerStatus::kActive ? "active" : "revoked";
}

std::span<const storage::Migration> streamer_migrations() { return kMigrations; }

bool valid_channel_name(std::string_view channel) {
  if (channel.size() < 2 || channel.size() > 40) return false;
  if (channel.front() == '-' || channel.back() == '-') return false;
  for (char c : channel) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_email(std::string_view email) {
  if (email.size() < 3 || email.size() > 254) return false;
  size_t at = email.find('@');
  if (at == std::string_view::npos || at == 0 ||
      email.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  std::string_view domain = email.substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
      domain.back() == '.') {
    return false;
  }
  for (unsigned char c : email) {
    if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"') {
      return false;
    }
  }
  return true;
}

std::string stream_key_hash(const Secret& key) { return sha256_hex(key.reveal()); }

Result<IssuedKey> add_streamer(storage::Database& db, std::string_view email,
                               std::string_view channel, int64_t now_ms) {
  if (!valid_email(email)) {
    return unexpected(ErrorCode::kInvalidArgument,
                      fmt::format("email \"{}\" is not an address", email));
  }
  if (!valid_channel_name(channel)) {
    return unexpected(
        ErrorCode::kInvalidArgument,
        fmt::format("channel \"{}\": use 2-40 lower-case letters, digits and '-'", channel));
  }
  if (auto existing = find_streamer_by_email(db, email); !existing) {
    return unexpected(std::move(existing).error());
  } else if (existing->has_value()) {
    return unexpected(
        ErrorCode::kAlreadyExists,
        fmt::format("a streamer with email {} exists (channel {})", email, (*existing)->channel));
  }
  if (auto existing = find_streamer_by_channel(db, channel); !existing) {
    return unexpected(std::move(existing).error());
  } else if (existing->has_value()) {
    return unexpected(ErrorCode::kAlreadyExists, fmt::format("channel {} is taken", channel));
  }
  auto key = new_key();
  if (!key) return unexpected(std::move(key).error());
  auto stmt = db.cached(
      "INSERT INTO streamers (email, channel, status, key_hash, key_hint, created_at_ms, "
      "key_rotated_at_ms) VALUES (?, ?, 'active', ?, ?, ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, email)
      .bind_text(2, channel)
      .bind_text(3, stream_key_hash(*key))
      .bind_text(4, hint_of(*key))
      .bind_int64(5, now_ms)
      .bind_int64(6, now_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "add streamer");
  auto added = find_streamer_by_channel(db, channel);
  if (!added || !added->has_value()) {
    return unexpected(ErrorCode::kInternal, "streamer vanished after insert");
  }
  return IssuedKey{std::move(**added), std::move(*key)};
}

Result<IssuedKey> rotate_stream_key(storage::Database& db, std::string_view channel,
                                    int64_t now_ms) {
  auto key = new_key();
  if (!key) return unexpected(std::move(key).error());
  auto stmt = db.cached(
      "UPDATE streamers SET key_hash = ?, key_hint = ?, status = 'active', key_rotated_at_ms = ? "
      "WHERE channel = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, stream_key_hash(*key))
      .bind_text(2, hint_of(*key))
      .bind_int64(3, now_ms)
      .bind_text(4, channel);
  HAWKER_TRY_STATUS((*stmt)->run(), "rotate stream key");
  if (db.changes() == 0) {
    return unexpected(ErrorCode::kNotFound, fmt::format("no streamer has channel {}", channel));
  }
  auto st = find_streamer_by_channel(db, channel);
  if (!st || !st->has_value()) return unexpected(ErrorCode::kInternal, "streamer vanished");
  return IssuedKey{std::move(**st), std::move(*key)};
}

Result<Streamer> revoke_streamer(storage::Database& db, std::string_view channel, int64_t now_ms) {
  auto stmt = db.cached(
      "UPDATE streamers SET key_hash = NULL, key_hint = '', status = 'revoked', "
      "key_rotated_at_ms = ? WHERE channel = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_int64(1, now_ms).bind_text(2, channel);
  HAWKER_TRY_STATUS((*stmt)->run(), "revoke streamer");
  if (db.changes() == 0) {
    return unexpected(ErrorCode::kNotFound, fmt::format("no streamer has channel {}", channel));
  }
  auto st = find_streamer_by_channel(db, channel);
  if (!st || !st->has_value()) return unexpected(ErrorCode::kInternal, "streamer vanished");
  return std::move(**st);
}

Result<std::vector<Streamer>> list_streamers(storage::Database& db) {
  auto stmt = db.cached(fmt::format("SELECT {} FROM streamers ORDER BY channel", kColumns));
  if (!stmt) return unexpected(std::move(stmt).error());
  std::vector<Streamer> out;
  while (true) {
    auto step = (*stmt)->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kDone) break;
    out.push_back(read_streamer(**stmt));
  }
  return out;
}

Result<std::optional<Streamer>> find_streamer_by_channel(storage::Database& db,
                                                         std::string_view channel) {
  return find_one(db, "channel", channel);
}

Result<std::optional<Streamer>> find_streamer_by_email(storage::Database& db,
                                                       std::string_view email) {
  return find_one(db, "email", email);
}

Result<std::optional<Streamer>> find_streamer_by_key(storage::Database& db, const Secret& key) {
  const std::string& k = key.reveal();
  if (k.size() != kStreamKeyPrefix.size() + 32 || k.rfind(kStreamKeyPrefix, 0) != 0) {
    return std::optional<Streamer>{};
  }
  std::string hash = stream_key_hash(key);
  auto stmt = db.cached(fmt::format(
      "SELECT {}, key_hash FROM streamers WHERE key_hash = ? AND status = 'active'", kColumns));
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, hash);
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone) return std::optional<Streamer>{};
  // The index found the row by hash; compare again in constant time so that no code path
  // depends on where two hashes differ.
  if (!constant_time_equal((*stmt)->column_text(7), hash)) return std::optional<Streamer>{};
  return std::optional<Streamer>{read_streamer(**stmt)};
}

}  // namespace hawker::commerce

#include "commerce/streamers.h"

#include <doctest/doctest.h>

using namespace hawker;
using namespace hawker::commerce;

namespace {
storage::Database memory_db() {
  auto db = storage::Database::open({.path = ":memory:", .wal = false});
  REQUIRE(db);
  storage::Schema schema;
  schema.add(streamer_migrations());
  REQUIRE(storage::apply_migrations(*db, schema));
  return std::move(*db);
}
}  // namespace

TEST_CASE("a new streamer gets a prefixed key that is stored only as a hash") {
  auto db = memory_db();
  auto issued = add_streamer(db, "ana@example.com", "ana-shop", 1000);
  REQUIRE(issued);
  const std::string& key = issued->key.reveal();
  CHECK(key.rfind("hwk_", 0) == 0);
  CHECK(key.size() == 36);
  CHECK(issued->streamer.key_hint == key.substr(32));

  auto stmt = db.prepare("SELECT key_hash FROM streamers");
  REQUIRE(stmt);
  REQUIRE(*stmt->step() == storage::Statement::Step::kRow);
  CHECK(stmt->column_text(0) == sha256_hex(key));
  CHECK(std::string(stmt->column_text(0)).find(key) == std::string::npos);

  auto found = find_streamer_by_key(db, issued->key);
  REQUIRE(found);
  REQUIRE(found->has_value());
  CHECK((*found)->channel == "ana-shop");
}

TEST_CASE("wrong, malformed and rotated keys do not match") {
  auto db = memory_db();
  auto issued = add_streamer(db, "bo@example.com", "bo", 1000);
  REQUIRE(issued);
  CHECK_FALSE(find_streamer_by_key(db, Secret("hwk_" + std::string(32, 'A')))->has_value());
  CHECK_FALSE(find_streamer_by_key(db, Secret("nonsense"))->has_value());
  CHECK_FALSE(find_streamer_by_key(db, Secret(""))->has_value());

  auto rotated = rotate_stream_key(db, "bo", 2000);
  REQUIRE(rotated);
  CHECK(rotated->key.reveal() != issued->key.reveal());
  CHECK_FALSE(find_streamer_by_key(db, issued->key)->has_value());
  CHECK(find_streamer_by_key(db, rotated->key)->has_value());
  CHECK(rotated->streamer.key_rotated_at_ms == 2000);
}

TEST_CASE("a revoked streamer's key stops matching until rotated") {
  auto db = memory_db();
  auto issued = add_streamer(db, "cy@example.com", "cy", 1000);
  REQUIRE(issued);
  auto revoked = revoke_streamer(db, "cy", 1500);
  REQUIRE(revoked);
  CHECK(revoked->status == StreamerStatus::kRevoked);
  CHECK_FALSE(find_streamer_by_key(db, issued->key)->has_value());
  auto again = rotate_stream_key(db, "cy", 1600);
  REQUIRE(again);
  CHECK(again->streamer.status == StreamerStatus::kActive);
  CHECK(find_streamer_by_key(db, again->key)->has_value());
  CHECK(revoke_streamer(db, "nobody", 1).error().code == ErrorCode::kNotFound);
}

TEST_CASE("emails and channels are validated and unique") {
  auto db = memory_db();
  CHECK(add_streamer(db, "not-an-email", "x1", 1).error().code == ErrorCode::kInvalidArgument);
  CHECK(add_streamer(db, "a@b.co", "Bad Name", 1).error().code == ErrorCode::kInvalidArgument);
  CHECK(add_streamer(db, "a@b.co", "-x", 1).error().code == ErrorCode::kInvalidArgument);
  REQUIRE(add_streamer(db, "a@b.co", "shop", 1));
  CHECK(add_streamer(db, "A@B.CO", "other", 1).error().code == ErrorCode::kAlreadyExists);
  CHECK(add_streamer(db, "c@b.co", "shop", 1).error().code == ErrorCode::kAlreadyExists);
  auto all = list_streamers(db);
  REQUIRE(all);
  CHECK(all->size() == 1);
  CHECK(valid_channel_name("live-shop-2"));
  CHECK_FALSE(valid_channel_name("a"));
  CHECK_FALSE(valid_email("a b@c.de"));
}

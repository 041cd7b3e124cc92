#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "commerce/events.h"
#include "commerce/streamers.h"
#include "core/result.h"
#include "storage/migrations.h"
#include "storage/sqlite.h"

namespace hawker::commerce {

/// The pinned product changed; viewers of the broadcast are told at once.
inline constexpr std::string_view kBroadcastPinned = "broadcast.pinned";

/// A show's life: scheduled -> live -> ended, or scheduled -> cancelled. The transitions are
/// in one table (broadcast_transition); nothing else changes a status.
enum class BroadcastStatus { kScheduled, kLive, kEnded, kCancelled };
const char* to_string(BroadcastStatus s);
std::optional<BroadcastStatus> parse_broadcast_status(std::string_view s);

enum class BroadcastAction {
  kGoLive,  ///< the streamer's key publishes
  kEnd,     ///< the publisher left for longer than the grace period
  kCancel,  ///< the seller calls it off
  kEdit,    ///< title, times, products (only before it ends)
  kPin,     ///< the product on screen changes
};
const char* to_string(BroadcastAction a);

/// The status after `action`, or kConflict naming why the action is not allowed from `from`.
Result<BroadcastStatus> broadcast_transition(BroadcastStatus from, BroadcastAction action);

struct Broadcast {
  std::string id;  ///< "bc_..."
  std::string title;
  std::string description;
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;
  int64_t streamer_id = 0;
  std::string channel;
  std::string streamer_email;
  BroadcastStatus status = BroadcastStatus::kScheduled;
  /// Created when a key published with nothing scheduled (broadcasts.allow-unscheduled).
  bool unscheduled = false;
  std::vector<std::string> product_ids;
  std::string pinned_product_id;  ///< empty when none
  int64_t live_at_ms = 0;         ///< 0 until it goes live
  int64_t ended_at_ms = 0;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

/// The seller's view: everything but the key (which is never stored).
nlohmann::json to_admin_json(const Broadcast& b);

/// Broadcasts, their products and the mail outbox (migrations 180-189).
std::span<const storage::Migration> broadcast_migrations();

/// Fields of a create or PATCH body; absent ones are nullopt.
struct BroadcastFields {
  std::optional<std::string> title;
  std::optional<std::string> description;
  std::optional<int64_t> starts_at_ms;
  std::optional<int64_t> ends_at_ms;
  std::optional<std::string> streamer_email;
  std::optional<std::vector<std::string>> product_ids;
};

/// Reads a create or PATCH body. Creating requires title, starts_at, ends_at and
/// streamer_email; unknown members are refused. On failure `field` names the member.
Status parse_broadcast_fields(const nlohmann::json& body, bool creating, BroadcastFields& out,
                              std::string& field);

/// A broadcast just created, with the key issued for a streamer created for it (the only time
/// that key exists in clear).
struct CreatedBroadcast {
  Broadcast broadcast;
  std::optional<IssuedKey> issued;
};

/// A channel name for a new streamer from their email ("Ana.Lopez@x.com" -> "ana-lopez"), made
/// unique with a suffix when taken.
Result<std::string> channel_for_email(storage::Database& db, std::string_view email);

/// Inside a write job: creates the broadcast, and the streamer (with a fresh key) when the email
/// is new. Products must exist. kInvalidArgument for bad values (ends before it starts, unknown
/// product).
Result<CreatedBroadcast> create_broadcast(storage::Database& db, const BroadcastFields& fields,
                                          int64_t now_ms);
/// Inside a write job: applies a PATCH (not to a broadcast that ended or was cancelled).
Result<Broadcast> update_broadcast(storage::Database& db, std::string_view id,
                                   const BroadcastFields& fields, int64_t now_ms);
/// Inside a write job: scheduled -> cancelled.
Result<Broadcast> cancel_broadcast(storage::Database& db, std::string_view id, int64_t now_ms);
/// Inside a write job: pins one of the broadcast's products (empty id unpins) and appends the
/// broadcast.pinned event.
Result<Broadcast> pin_product(storage::Database& db, std::string_view id,
                              std::string_view product_id, int64_t now_ms,
                              std::vector<Event>& events);

Result<std::optional<Broadcast>> find_broadcast(storage::Database& db, std::string_view id);
/// Every broadcast, newest start first, at most `limit`.
Result<std::vector<Broadcast>> list_broadcasts(storage::Database& db, size_t limit);
/// Live broadcasts and scheduled ones that have not ended yet, soonest first: what viewers see.
Result<std::vector<Broadcast>> current_broadcasts(storage::Database& db, int64_t now_ms);
/// The streamer's broadcasts that are live or scheduled.
Result<std::vector<Broadcast>> open_broadcasts_of(storage::Database& db, int64_t streamer_id);

/// How a publish is matched to a broadcast (broadcasts.* configuration).
struct GoLiveRule {
  /// A scheduled broadcast may start this long before its starts_at.
  int64_t early_ms = 15 * 60 * 1000;
  /// With key windows on, the key still works this long after ends_at.
  int64_t late_ms = 30 * 60 * 1000;
  /// The next scheduled broadcast goes live early when it starts within this much time.
  int64_t lookahead_ms = 12 * 3600 * 1000;
  bool allow_unscheduled = true;
  bool key_window = false;
};

/// Which of a streamer's open broadcasts a publish at `now_ms` makes live. In order: one that
/// is live already (a republish); a scheduled one whose [starts_at - early, ends_at] holds now
/// (the earliest start first); the next scheduled one starting within the lookahead. Nullopt
/// when none fits (then an unscheduled broadcast may be created). Pure.
std::optional<size_t> select_for_go_live(std::span<const Broadcast> open, int64_t now_ms,
                                         const GoLiveRule& rule);

/// With key windows on, whether a key may publish now: nullopt when yes, else the reason the
/// publisher is told. A live broadcast always admits its streamer (a reconnect). Pure.
std::optional<std::string> key_window_refusal(std::span<const Broadcast> open, int64_t now_ms,
                                              const GoLiveRule& rule);

/// Inside a write job, when the streamer's key publishes: the selected broadcast goes live, or
/// an unscheduled one is created when allowed; appends broadcast.live. Nullopt when nothing
/// went live (none selected and unscheduled not allowed). A broadcast already live is returned
/// without a new event.
Result<std::optional<Broadcast>> go_live(storage::Database& db, const Streamer& streamer,
                                         int64_t now_ms, const GoLiveRule& rule,
                                         std::vector<Event>& events);
/// Inside a write job, when the channel's stream ended: its live broadcasts end, each with
/// broadcast.ended.
Result<std::vector<Broadcast>> end_live(storage::Database& db, std::string_view channel,
                                        int64_t now_ms, std::vector<Event>& events);

/// The data of broadcast.live / broadcast.ended / broadcast.pinned events.
nlohmann::json broadcast_event_data(const Broadcast& b);

}  // namespace hawker::commerce

#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "storage/migrations.h"
#include "storage/sqlite.h"

namespace hawker::commerce {

/// Event types hawker reports, as webhooks and (without personal data) to viewers.
namespace event_type {
inline constexpr std::string_view kOrderCreated = "order.created";
inline constexpr std::string_view kOrderPaid = "order.paid";
inline constexpr std::string_view kOrderExpired = "order.expired";
inline constexpr std::string_view kOrderCancelled = "order.cancelled";
inline constexpr std::string_view kOrderRefunded = "order.refunded";
inline constexpr std::string_view kOrderShipped = "order.shipped";
inline constexpr std::string_view kStockChanged = "stock.changed";
inline constexpr std::string_view kStockLow = "stock.low";
inline constexpr std::string_view kStockSoldOut = "stock.sold_out";
inline constexpr std::string_view kBroadcastLive = "broadcast.live";
inline constexpr std::string_view kBroadcastEnded = "broadcast.ended";
}  // namespace event_type

/// One row of the outbox: written in the same transaction as the change it reports, so an
/// event exists exactly when its change does.
struct Event {
  int64_t seq = 0;  ///< order of commit; consumers keep a cursor on it
  std::string id;   ///< "evt_..." stable across deliveries (webhook-id)
  std::string type;
  /// The data object as JSON text, as stored. Kept as text because most events go from the
  /// storage thread to the database and the loop without anyone reading inside them (a flash
  /// sale writes two per order); data() parses it for those who do.
  std::string data_text;
  int64_t created_at_ms = 0;

  /// The data object, parsed (discarded when the text is not JSON).
  nlohmann::json data() const;
  /// The envelope sent to webhooks: {"id", "type", "timestamp", "data"}.
  nlohmann::json envelope() const;
};

/// The outbox table (migrations 110-119).
std::span<const storage::Migration> event_migrations();

/// Appends an event inside the caller's transaction (a Store write job).
Result<Event> append_event(storage::Database& db, std::string_view type, const nlohmann::json& data,
                           int64_t now_ms);
/// The same with the data object already written as JSON text (for events every order writes).
Result<Event> append_event_text(storage::Database& db, std::string_view type, std::string data_text,
                                int64_t now_ms);

/// Events with seq > `after_seq`, oldest first, at most `limit`.
Result<std::vector<Event>> events_after(storage::Database& db, int64_t after_seq, size_t limit);

/// The highest seq written so far (0 when none).
Result<int64_t> last_event_seq(storage::Database& db);

/// Tells loop-side consumers (the SSE hub, the webhook sender) that events were committed.
/// Publishers call it from a Store write's completion callback, after COMMIT. Loop thread only.
class EventBus {
 public:
  using Subscriber = std::function<void(const Event&)>;
  void subscribe(Subscriber s) { subscribers_.push_back(std::move(s)); }
  void publish(const Event& e) const {
    for (const auto& s : subscribers_) s(e);
  }
  void publish(const std::vector<Event>& events) const {
    for (const auto& e : events) publish(e);
  }

 private:
  std::vector<Subscriber> subscribers_;
};

}  // namespace hawker::commerce

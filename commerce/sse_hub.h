#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "commerce/events.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "http/exchange.h"
#include "http/router.h"
#include "storage/store.h"

namespace hawker::commerce {

/// What viewers are told about one outbox event: no personal data, only what a product page
/// shows. Names: "stock" {product_id, stock}, "low_stock" {product_id, stock}, "sold_out"
/// {product_id, stock}, "purchase" {product_id, quantity, orders}.
struct ViewerEvent {
  std::string topic;  ///< "product:<id>"; broadcasts will have "broadcast:<id>"
  std::string name;
  nlohmann::json data;
  int64_t seq = 0;  ///< the SSE id: the outbox seq, so Last-Event-ID resumes from the outbox
};

/// The topic a product's viewers listen on.
std::string product_topic(std::string_view product_id);
/// The topic of one broadcast's viewers: "live" {broadcast...}, "ended", "pinned".
std::string broadcast_topic(std::string_view broadcast_id);
/// Every broadcast going live or ending, for the home page: "live", "ended".
inline constexpr std::string_view kBroadcastsTopic = "broadcasts";

/// The viewer form of an outbox event, or nullopt when viewers are not told about it. For an
/// event that reaches several topics, the first (see viewer_events).
std::optional<ViewerEvent> viewer_event(const Event& event);
/// Every topic's viewer form of an outbox event: a broadcast going live reaches its own topic
/// and the global one.
std::vector<ViewerEvent> viewer_events(const Event& event);

/// Events to replay after a Last-Event-ID, in order: of a burst of stock updates only the
/// newest is kept (the count in between is of no use to a viewer catching up).
std::vector<ViewerEvent> replay_events(std::span<const Event> events, std::string_view topic);

/// Keeps one topic's stream readable during a flash sale: stock updates at most one per
/// interval, always carrying the latest stock; purchases summed over the interval ("3 orders,
/// 5 units"); low-stock and sold-out at once. Ids never go back: an update held back and sent
/// after a later event carries that later id, which is right because it is the latest state.
/// Pure: the hub calls take_due from a timer.
class TopicCoalescer {
 public:
  explicit TopicCoalescer(int64_t interval_ms) : interval_ms_(interval_ms) {}

  /// Takes one event; returns what may be sent now.
  std::vector<ViewerEvent> offer(int64_t now_ms, ViewerEvent event);
  /// Held events whose interval has passed, oldest first.
  std::vector<ViewerEvent> take_due(int64_t now_ms);
  /// When the next held event becomes due, if one is held.
  std::optional<int64_t> next_due_ms() const;

 private:
  struct Slot {
    std::optional<int64_t> last_sent_ms;
    std::optional<ViewerEvent> held;
  };
  ViewerEvent stamp(ViewerEvent e);
  bool may_send(const Slot& s, int64_t now_ms) const {
    return !s.last_sent_ms || now_ms - *s.last_sent_ms >= interval_ms_;
  }

  int64_t interval_ms_;
  Slot stock_;
  Slot purchase_;
  int64_t last_seq_ = 0;
};

struct SseHubOptions {
  int64_t coalesce_ms = 250;
  int64_t keepalive_ms = 15'000;
  size_t max_subscribers = 10'000;
  /// Outbox events read for one Last-Event-ID resume.
  size_t replay_limit = 1'000;
  /// Reconnection delay asked of browsers.
  int retry_ms = 2'000;
};

/// Live events for viewers over Server-Sent Events, keyed by topic:
/// `GET /api/products/{id}/events`, `GET /api/broadcasts/{id}/events` (a "broadcast" event
/// with the current state first) and `GET /api/broadcasts/events` (every go-live and end). On
/// connect it sends what was missed since Last-Event-ID (read from the outbox) and the current
/// stock, then live events from the EventBus. Slow readers are cut by the HTTP server's stream cap.
/// Loop thread only.
class SseHub {
 public:
  SseHub(Loop& loop, storage::Store& store, EventBus& bus, Clock& clock, Metrics& metrics,
         SseHubOptions options = {});
  ~SseHub();
  SseHub(const SseHub&) = delete;
  SseHub& operator=(const SseHub&) = delete;

  Status add_routes(http::Router& router);
  /// Subscribes to the bus and starts the keep-alive timer.
  void start();
  /// Ends every stream and stops the timers.
  void stop();
  size_t subscriber_count() const { return subscriber_count_; }

 private:
  struct Subscriber {
    http::StreamWriterPtr stream;
    int64_t last_seq = 0;
    bool ready = false;
    std::vector<ViewerEvent> held;
  };
  struct Topic {
    explicit Topic(int64_t interval_ms) : coalescer(interval_ms) {}
    TopicCoalescer coalescer;
    std::vector<std::shared_ptr<Subscriber>> subscribers;
  };
  struct Snapshot {
    bool found = false;
    int64_t last_seq = 0;
    std::vector<Event> missed;
    /// The current state, sent after the replay ("stock", "broadcast").
    std::optional<ViewerEvent> current;
  };
  /// Reads a topic's snapshot on a reader thread; `after` is the Last-Event-ID.
  using SnapshotReader =
      std::function<Result<Snapshot>(storage::Database&, std::optional<int64_t> after)>;

  void handle_product(const http::Request& req, const http::ExchangePtr& ex);
  /// One broadcast's topic, or with `all` the global one.
  void handle_broadcast(const http::Request& req, const http::ExchangePtr& ex, bool all);
  void subscribe(const http::Request& req, const http::ExchangePtr& ex, std::string topic_name,
                 SnapshotReader read, std::string_view not_found);
  void on_event(const Event& e);
  void broadcast(Topic& topic, const std::vector<ViewerEvent>& events);
  void deliver(Subscriber& s, const ViewerEvent& e);
  void remove(const std::string& topic, const std::shared_ptr<Subscriber>& s);
  void flush_due();
  void arm_flush();
  void keepalive();

  Loop& loop_;
  storage::Store& store_;
  EventBus& bus_;
  Clock& clock_;
  SseHubOptions options_;
  std::map<std::string, Topic> topics_;
  std::set<std::string> held_topics_;
  size_t subscriber_count_ = 0;
  Timer flush_timer_;
  Timer keepalive_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool running_ = false;
  Gauge& subscribers_gauge_;
  Counter& events_sent_;
};

}  // namespace hawker::commerce

#include "commerce/sse_hub.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "commerce/broadcasts.h"
#include "core/log.h"
#include "http/sse.h"

namespace hawker::commerce {
namespace {

constexpr const char* kLog = "sse";
constexpr size_t kMaxProductId = 128;

std::optional<int64_t> parse_seq(std::string_view text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

bool coalesced(std::string_view name) { return name == "stock" || name == "purchase"; }

}  // namespace

std::string product_topic(std::string_view product_id) {
  return "product:" + std::string(product_id);
}

namespace {

std::optional<ViewerEvent> product_viewer_event(const Event& e, const nlohmann::json& data) {
  if (!data.is_object()) return std::nullopt;
  auto pid = data.find("product_id");
  if (pid == data.end() || !pid->is_string()) return std::nullopt;
  std::string product_id = pid->get<std::string>();
  ViewerEvent v;
  v.topic = product_topic(product_id);
  v.seq = e.seq;
  auto stock = data.find("stock");
  bool has_stock = stock != data.end() && stock->is_number_integer();
  if (e.type == event_type::kStockChanged && has_stock) {
    v.name = "stock";
    v.data = {{"product_id", product_id}, {"stock", *stock}};
  } else if (e.type == event_type::kStockLow && has_stock) {
    v.name = "low_stock";
    v.data = {{"product_id", product_id}, {"stock", *stock}};
  } else if (e.type == event_type::kStockSoldOut) {
    v.name = "sold_out";
    v.data = {{"product_id", product_id}, {"stock", 0}};
  } else if (e.type == event_type::kOrderCreated) {
    auto q = data.find("quantity");
    if (q == data.end() || !q->is_number_integer()) return std::nullopt;
    // Only the quantity: who bought, and for how much, is not for other viewers.
    v.name = "purchase";
    v.data = {{"product_id", product_id}, {"quantity", *q}, {"orders", 1}};
  } else {
    return std::nullopt;
  }
  return v;
}

}  // namespace

std::string broadcast_topic(std::string_view broadcast_id) {
  return "broadcast:" + std::string(broadcast_id);
}

std::vector<ViewerEvent> viewer_events(const Event& e) {
  std::vector<ViewerEvent> out;
  bool live = e.type == event_type::kBroadcastLive;
  bool ended = e.type == event_type::kBroadcastEnded;
  if (live || ended || e.type == kBroadcastPinned) {
    nlohmann::json data = e.data();
    if (!data.is_object()) return out;
    auto id = data.find("broadcast_id");
    if (id == data.end() || !id->is_string()) return out;
    ViewerEvent v;
    v.topic = broadcast_topic(id->get<std::string>());
    v.name = live ? "live" : ended ? "ended" : "pinned";
    v.seq = e.seq;
    v.data = std::move(data);
    out.push_back(v);
    if (live || ended) {
      v.topic = std::string(kBroadcastsTopic);
      out.push_back(std::move(v));
    }
    return out;
  }
  if (auto v = product_viewer_event(e, e.data())) out.push_back(std::move(*v));
  return out;
}

std::optional<ViewerEvent> viewer_event(const Event& e) {
  auto all = viewer_events(e);
  if (all.empty()) return std::nullopt;
  return std::move(all.front());
}

std::vector<ViewerEvent> replay_events(std::span<const Event> events, std::string_view topic) {
  std::vector<ViewerEvent> out;
  std::optional<size_t> last_stock;
  for (const auto& e : events) {
    for (auto& v : viewer_events(e)) {
      if (v.topic != topic) continue;
      if (v.name == "stock") {
        if (last_stock) out.erase(out.begin() + static_cast<ptrdiff_t>(*last_stock));
        last_stock = out.size();
      }
      out.push_back(std::move(v));
    }
  }
  return out;
}

ViewerEvent TopicCoalescer::stamp(ViewerEvent e) {
  last_seq_ = std::max(last_seq_, e.seq);
  e.seq = last_seq_;
  return e;
}

std::vector<ViewerEvent> TopicCoalescer::offer(int64_t now_ms, ViewerEvent event) {
  if (!coalesced(event.name)) return {stamp(std::move(event))};
  Slot& slot = event.name == "stock" ? stock_ : purchase_;
  if (slot.held) {
    ViewerEvent& held = *slot.held;
    if (event.name == "purchase") {
      held.data["quantity"] =
          held.data["quantity"].get<int64_t>() + event.data["quantity"].get<int64_t>();
      held.data["orders"] =
          held.data["orders"].get<int64_t>() + event.data["orders"].get<int64_t>();
    } else {
      held.data = std::move(event.data);
    }
    held.seq = std::max(held.seq, event.seq);
    return {};
  }
  if (may_send(slot, now_ms)) {
    slot.last_sent_ms = now_ms;
    return {stamp(std::move(event))};
  }
  slot.held = std::move(event);
  return {};
}

std::vector<ViewerEvent> TopicCoalescer::take_due(int64_t now_ms) {
  std::vector<Slot*> due;
  for (Slot* s : {&stock_, &purchase_}) {
    if (s->held && may_send(*s, now_ms)) due.push_back(s);
  }
  std::sort(due.begin(), due.end(), [](Slot* a, Slot* b) { return a->held->seq < b->held->seq; });
  std::vector<ViewerEvent> out;
  for (Slot* s : due) {
    s->last_sent_ms = now_ms;
    out.push_back(stamp(std::move(*s->held)));
    s->held.reset();
  }
  return out;
}

std::optional<int64_t> TopicCoalescer::next_due_ms() const {
  std::optional<int64_t> next;
  for (const Slot* s : {&stock_, &purchase_}) {
    if (!s->held) continue;
    int64_t at = s->last_sent_ms ? *s->last_sent_ms + interval_ms_ : 0;
    next = next ? std::min(*next, at) : at;
  }
  return next;
}

SseHub::SseHub(Loop& loop, storage::Store& store, EventBus& bus, Clock& clock, Metrics& metrics,
               SseHubOptions options)
    : loop_(loop),
      store_(store),
      bus_(bus),
      clock_(clock),
      options_(options),
      flush_timer_(loop),
      keepalive_timer_(loop),
      subscribers_gauge_(
          metrics.gauge("hawker_sse_subscribers", "Viewers connected to live event streams")
              .with({})),
      events_sent_(metrics.counter("hawker_sse_events_total", "Events written to viewers' streams")
                       .with({})) {}

SseHub::~SseHub() {
  *alive_ = false;
  stop();
}

Status SseHub::add_routes(http::Router& router) {
  HAWKER_TRY_STATUS(router.add("GET", "/api/products/{id}/events",
                               [this](const http::Request& req, http::ExchangePtr ex) {
                                 handle_product(req, ex);
                               }),
                    "route /api/products/{id}/events");
  HAWKER_TRY_STATUS(router.add("GET", "/api/broadcasts/{id}/events",
                               [this](const http::Request& req, http::ExchangePtr ex) {
                                 handle_broadcast(req, ex, false);
                               }),
                    "route /api/broadcasts/{id}/events");
  HAWKER_TRY_STATUS(router.add("GET", "/api/broadcasts/events",
                               [this](const http::Request& req, http::ExchangePtr ex) {
                                 handle_broadcast(req, ex, true);
                               }),
                    "route /api/broadcasts/events");
  return ok_status();
}

void SseHub::start() {
  if (running_) return;
  running_ = true;
  bus_.subscribe([this, alive = std::weak_ptr<bool>(alive_)](const Event& e) {
    if (auto a = alive.lock(); a && *a) on_event(e);
  });
  auto every = static_cast<uint64_t>(std::max<int64_t>(options_.keepalive_ms, 100));
  keepalive_timer_.start(every, every, [this] { keepalive(); });
}

void SseHub::stop() {
  running_ = false;
  flush_timer_.stop();
  keepalive_timer_.stop();
  std::vector<http::StreamWriterPtr> streams;
  for (auto& [name, topic] : topics_) {
    for (auto& s : topic.subscribers) {
      if (s->stream) streams.push_back(s->stream);
    }
  }
  for (auto& s : streams) s->close();
  topics_.clear();
  held_topics_.clear();
  subscriber_count_ = 0;
  subscribers_gauge_.set(0);
}

namespace {

/// Outbox events after `after` (up to `last`) of the given types whose data names `id` under
/// `key`, oldest first.
Status read_missed(storage::Database& db, int64_t after, int64_t last, std::string_view types,
                   std::string_view key, std::string_view id, size_t limit,
                   std::vector<Event>& out) {
  auto missed = db.cached(fmt::format(
      "SELECT seq, id, type, data, created_at_ms FROM events WHERE seq > ? AND seq <= ? "
      "AND type IN ({}) {} ORDER BY seq LIMIT ?",
      types, key.empty() ? "" : fmt::format("AND json_extract(data, '$.{}') = ?", key)));
  if (!missed) return unexpected(std::move(missed).error());
  (*missed)->bind_int64(1, after).bind_int64(2, last);
  int next = 3;
  if (!key.empty()) (*missed)->bind_text(next++, id);
  (*missed)->bind_int64(next, static_cast<int64_t>(limit));
  while (true) {
    auto row = (*missed)->step();
    if (!row) return unexpected(std::move(row).error());
    if (*row == storage::Statement::Step::kDone) break;
    const auto& s = **missed;
    Event e;
    e.seq = s.column_int64(0);
    e.id = std::string(s.column_text(1));
    e.type = std::string(s.column_text(2));
    e.data_text = std::string(s.column_text(3));
    e.created_at_ms = s.column_int64(4);
    out.push_back(std::move(e));
  }
  return ok_status();
}

constexpr std::string_view kBroadcastTypes =
    "'broadcast.live', 'broadcast.ended', 'broadcast.pinned'";

}  // namespace

void SseHub::handle_product(const http::Request& req, const http::ExchangePtr& ex) {
  std::string product_id(req.param("id"));
  if (product_id.empty() || product_id.size() > kMaxProductId) {
    ex->respond(http::Response::problem(404, "not-found", "Not found", "no such product"));
    return;
  }
  size_t limit = options_.replay_limit;
  std::string topic_name = product_topic(product_id);
  subscribe(
      req, ex, topic_name,
      [product_id, limit, topic_name](storage::Database& db,
                                      std::optional<int64_t> after) -> Result<Snapshot> {
        Snapshot snap;
        auto stock = db.cached("SELECT stock FROM products WHERE id = ? AND deleted = 0");
        if (!stock) return unexpected(std::move(stock).error());
        (*stock)->bind_text(1, product_id);
        auto step = (*stock)->step();
        if (!step) return unexpected(std::move(step).error());
        if (*step == storage::Statement::Step::kDone) return snap;
        snap.found = true;
        ViewerEvent current;
        current.topic = topic_name;
        current.name = "stock";
        current.data = {{"product_id", product_id}, {"stock", (*stock)->column_int64(0)}};
        auto last = last_event_seq(db);
        if (!last) return unexpected(std::move(last).error());
        snap.last_seq = *last;
        current.seq = snap.last_seq;
        snap.current = std::move(current);
        if (!after || *after >= snap.last_seq) return snap;
        HAWKER_TRY_STATUS(
            read_missed(db, *after, snap.last_seq,
                        "'stock.changed', 'stock.low', 'stock.sold_out', 'order.created'",
                        "product_id", product_id, limit, snap.missed),
            "replay");
        return snap;
      },
      "no such product");
}

void SseHub::handle_broadcast(const http::Request& req, const http::ExchangePtr& ex, bool all) {
  size_t limit = options_.replay_limit;
  // The global topic: every go-live and end, for the home page.
  if (all) {
    subscribe(
        req, ex, std::string(kBroadcastsTopic),
        [limit](storage::Database& db, std::optional<int64_t> after) -> Result<Snapshot> {
          Snapshot snap;
          snap.found = true;
          auto last = last_event_seq(db);
          if (!last) return unexpected(std::move(last).error());
          snap.last_seq = *last;
          if (!after || *after >= snap.last_seq) return snap;
          HAWKER_TRY_STATUS(
              read_missed(db, *after, snap.last_seq, "'broadcast.live', 'broadcast.ended'", "", "",
                          limit, snap.missed),
              "replay");
          return snap;
        },
        "");
    return;
  }
  std::string id(req.param("id"));
  if (id.empty() || id.size() > kMaxProductId) {
    ex->respond(http::Response::problem(404, "not-found", "Not found", "no such broadcast"));
    return;
  }
  std::string topic_name = broadcast_topic(id);
  subscribe(
      req, ex, topic_name,
      [id, limit, topic_name](storage::Database& db,
                              std::optional<int64_t> after) -> Result<Snapshot> {
        Snapshot snap;
        auto found = find_broadcast(db, id);
        if (!found) return unexpected(std::move(found).error());
        if (!found->has_value()) return snap;
        snap.found = true;
        auto last = last_event_seq(db);
        if (!last) return unexpected(std::move(last).error());
        snap.last_seq = *last;
        ViewerEvent current;
        current.topic = topic_name;
        current.name = "broadcast";
        current.data = broadcast_event_data(**found);
        current.seq = snap.last_seq;
        snap.current = std::move(current);
        if (!after || *after >= snap.last_seq) return snap;
        HAWKER_TRY_STATUS(read_missed(db, *after, snap.last_seq, kBroadcastTypes, "broadcast_id",
                                      id, limit, snap.missed),
                          "replay");
        return snap;
      },
      "no such broadcast");
}

void SseHub::subscribe(const http::Request& req, const http::ExchangePtr& ex,
                       std::string topic_name, SnapshotReader read, std::string_view not_found) {
  if (!running_ || subscriber_count_ >= options_.max_subscribers) {
    auto r = http::Response::problem(503, "too-many-viewers", "Too many viewers",
                                     "the live event stream is full; try again shortly");
    r.headers.set("Retry-After", "5");
    ex->respond(std::move(r));
    return;
  }
  std::optional<int64_t> after;
  if (auto id = http::last_event_id(req)) after = parse_seq(*id);

  // Subscribed before the read so nothing committed meanwhile is missed: live events are held
  // until the snapshot is sent, then only the newer ones go out.
  auto sub = std::make_shared<Subscriber>();
  auto it = topics_.try_emplace(topic_name, options_.coalesce_ms).first;
  it->second.subscribers.push_back(sub);
  ++subscriber_count_;
  subscribers_gauge_.set(static_cast<double>(subscriber_count_));

  store_.read<Snapshot>(
      [read = std::move(read), after](storage::Database& db) { return read(db, after); },
      [this, alive = alive_, ex, sub, topic_name,
       not_found = std::string(not_found)](Result<Snapshot> snap) {
        if (!*alive) return;
        if (!running_ || ex->aborted() || !snap || !snap->found) {
          remove(topic_name, sub);
          if (!snap) {
            log::warn(kLog, "reading {} failed: {}", topic_name, snap.error().message);
            ex->respond(http::Response::problem(503, "storage-unavailable", "Storage unavailable",
                                                "try again shortly"));
          } else if (!snap->found) {
            ex->respond(http::Response::problem(404, "not-found", "Not found", not_found));
          }
          return;
        }
        sub->stream = ex->start_stream(200, http::sse_headers());
        if (!sub->stream) {
          remove(topic_name, sub);
          return;
        }
        sub->stream->on_close([this, alive, topic_name, weak = std::weak_ptr<Subscriber>(sub)] {
          if (!*alive) return;
          if (auto s = weak.lock()) remove(topic_name, s);
        });
        http::SseEvent hello;
        hello.retry_ms = options_.retry_ms;
        hello.event = "hello";
        hello.data = "{}";
        sub->stream->write(http::format_sse(hello));
        for (const auto& e : replay_events(snap->missed, topic_name)) deliver(*sub, e);
        if (snap->current) deliver(*sub, *snap->current);
        sub->last_seq = std::max(sub->last_seq, snap->last_seq);
        sub->ready = true;
        std::vector<ViewerEvent> held = std::move(sub->held);
        for (const auto& e : held) deliver(*sub, e);
      });
}

void SseHub::deliver(Subscriber& s, const ViewerEvent& e) {
  if (!s.ready && s.stream == nullptr) {
    s.held.push_back(e);
    return;
  }
  if (!s.stream || s.stream->closed()) return;
  // Already covered by what this viewer was sent (the snapshot or a later update).
  if (e.seq < s.last_seq || (e.seq == s.last_seq && s.ready)) return;
  s.last_seq = e.seq;
  http::SseEvent out;
  out.id = e.seq > 0 ? std::to_string(e.seq) : "";
  out.event = e.name;
  out.data = e.data.dump();
  events_sent_.inc();
  // A false return means the reader is behind; the server's stream cap decides when to cut it.
  s.stream->write(http::format_sse(out));
}

void SseHub::on_event(const Event& e) {
  // With no viewer topic open, there is nobody to translate the event for (a flash sale
  // publishes a few events per order).
  if (!running_ || topics_.empty()) return;
  for (auto& v : viewer_events(e)) {
    auto it = topics_.find(v.topic);
    if (it == topics_.end()) continue;
    std::string name = it->first;
    auto now = clock_.steady_ms();
    auto out = it->second.coalescer.offer(now, std::move(v));
    broadcast(it->second, out);
    if (it->second.coalescer.next_due_ms()) {
      held_topics_.insert(name);
      arm_flush();
    }
  }
}

void SseHub::broadcast(Topic& topic, const std::vector<ViewerEvent>& events) {
  if (events.empty()) return;
  // A write can close a stream (over its cap) and so remove a subscriber: iterate a copy.
  auto subscribers = topic.subscribers;
  for (const auto& e : events) {
    for (const auto& s : subscribers) {
      if (s->ready) {
        deliver(*s, e);
      } else {
        s->held.push_back(e);
      }
    }
  }
}

void SseHub::remove(const std::string& topic_name, const std::shared_ptr<Subscriber>& s) {
  auto it = topics_.find(topic_name);
  if (it == topics_.end()) return;
  auto& subs = it->second.subscribers;
  auto pos = std::find(subs.begin(), subs.end(), s);
  if (pos == subs.end()) return;
  subs.erase(pos);
  if (subscriber_count_ > 0) --subscriber_count_;
  subscribers_gauge_.set(static_cast<double>(subscriber_count_));
  // The topic itself is dropped later (keepalive), never while a broadcast may hold it.
}

void SseHub::arm_flush() {
  if (!running_ || flush_timer_.active() || held_topics_.empty()) return;
  int64_t now = clock_.steady_ms();
  std::optional<int64_t> next;
  for (const auto& name : held_topics_) {
    auto it = topics_.find(name);
    if (it == topics_.end()) continue;
    if (auto due = it->second.coalescer.next_due_ms()) next = next ? std::min(*next, *due) : *due;
  }
  if (!next) return;
  flush_timer_.start(static_cast<uint64_t>(std::max<int64_t>(0, *next - now)), 0,
                     [this] { flush_due(); });
}

void SseHub::flush_due() {
  int64_t now = clock_.steady_ms();
  std::vector<std::string> names(held_topics_.begin(), held_topics_.end());
  for (const auto& name : names) {
    auto it = topics_.find(name);
    if (it == topics_.end()) {
      held_topics_.erase(name);
      continue;
    }
    broadcast(it->second, it->second.coalescer.take_due(now));
    if (!it->second.coalescer.next_due_ms()) held_topics_.erase(name);
  }
  arm_flush();
}

void SseHub::keepalive() {
  std::string ping = http::format_sse_comment("keep-alive");
  std::vector<std::shared_ptr<Subscriber>> all;
  for (auto& [name, topic] : topics_) {
    all.insert(all.end(), topic.subscribers.begin(), topic.subscribers.end());
  }
  for (const auto& s : all) {
    if (s->ready && s->stream && !s->stream->closed()) s->stream->write(ping);
  }
  for (auto it = topics_.begin(); it != topics_.end();) {
    if (it->second.subscribers.empty() && !held_topics_.count(it->first)) {
      it = topics_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace hawker::commerce

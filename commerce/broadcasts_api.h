#pragma once

#include <functional>
#include <string>

#include "commerce/auth.h"
#include "commerce/broadcasts.h"
#include "commerce/events.h"
#include "commerce/mail.h"
#include "core/clock.h"
#include "http/router.h"
#include "storage/store.h"

namespace hawker::commerce {

struct BroadcastApiOptions {
  /// Base URL playback and watch links are built on (known only once HTTP listens).
  std::function<std::string()> public_url;
  /// The RTMP server URL streamers put in OBS.
  std::function<std::string()> rtmp_url;
  /// The sender of streamers' emails (smtp.from).
  std::string mail_from;
  /// Told after a commit that queued mail, so it goes out at once.
  std::function<void()> mail_queued;
};

/// Broadcasts over HTTP.
///   Admin (AdminAuth):
///   POST  /api/admin/broadcasts              {title, starts_at, ends_at, streamer_email,
///                                            product_ids, description} -> 201; the stream key
///                                            only when a streamer was created for it
///   GET   /api/admin/broadcasts              every broadcast, newest first
///   GET   /api/admin/broadcasts/{id}
///   PATCH /api/admin/broadcasts/{id}         title, description, starts_at, ends_at, product_ids
///   POST  /api/admin/broadcasts/{id}/cancel
///   POST  /api/admin/broadcasts/{id}/pin     {product_id} (null unpins)
///   POST  /api/admin/streamers/{channel}/rotate-key -> the new key, once
///   Public:
///   GET   /api/broadcasts                    live and upcoming shows with products and stock
/// Scheduling and rotating queue the streamer's email in the same transaction.
class BroadcastApi {
 public:
  BroadcastApi(storage::Store& store, AdminAuth& auth, EventBus& bus, Clock& clock,
               BroadcastApiOptions options);

  Status add_routes(http::Router& router);

 private:
  void create(const http::Request& req, const http::ExchangePtr& ex);
  void list_admin(const http::Request& req, const http::ExchangePtr& ex);
  void get_admin(const http::Request& req, const http::ExchangePtr& ex);
  void patch(const http::Request& req, const http::ExchangePtr& ex);
  void cancel(const http::Request& req, const http::ExchangePtr& ex);
  void pin(const http::Request& req, const http::ExchangePtr& ex);
  void rotate_key(const http::Request& req, const http::ExchangePtr& ex);
  void list_public(const http::ExchangePtr& ex);
  http::Handler guarded(void (BroadcastApi::*method)(const http::Request&,
                                                     const http::ExchangePtr&));
  /// The admin view plus the links a seller shares.
  nlohmann::json admin_json(const Broadcast& b) const;

  storage::Store& store_;
  AdminAuth& auth_;
  EventBus& bus_;
  Clock& clock_;
  BroadcastApiOptions options_;
};

/// Queues the onboarding email for `streamer` inside a write job: the key when one was issued
/// now, else its hint, and the streamer's open broadcasts as the schedule.
Status queue_stream_key_mail(storage::Database& db, std::string_view from, const Streamer& streamer,
                             const Secret& key, StreamKeyMail::Reason reason,
                             const std::string& rtmp_url, const std::string& public_url,
                             int64_t now_ms);

}  // namespace hawker::commerce

#pragma once

#include "commerce/auth.h"
#include "commerce/webhooks_dispatcher.h"
#include "core/clock.h"
#include "http/router.h"
#include "storage/store.h"

namespace hawker::commerce {

/// The seller's webhook endpoints under /api/admin/webhooks, all behind AdminAuth:
///   POST   /api/admin/webhooks                          {url, events, description} -> 201 with
///                                                       the secret, shown this once
///   GET    /api/admin/webhooks                          list (never the secret)
///   GET    /api/admin/webhooks/{id}
///   DELETE /api/admin/webhooks/{id}
///   POST   /api/admin/webhooks/{id}/disable | /enable
///   GET    /api/admin/webhooks/{id}/deliveries          latest deliveries with their attempts
///   POST   /api/admin/webhooks/deliveries/{id}/replay   sends the event again
class WebhookAdminApi {
 public:
  /// `dispatcher` may be null (nothing is woken; deliveries wait for the next poll).
  WebhookAdminApi(storage::Store& store, AdminAuth& auth, WebhookDispatcher* dispatcher,
                  Clock& clock, bool allow_private);

  Status add_routes(http::Router& router);

 private:
  void create(const http::Request& req, const http::ExchangePtr& ex);
  void list(const http::ExchangePtr& ex);
  void get(const http::Request& req, const http::ExchangePtr& ex);
  void remove(const http::Request& req, const http::ExchangePtr& ex);
  void set_enabled(const http::Request& req, const http::ExchangePtr& ex, bool enabled);
  void deliveries(const http::Request& req, const http::ExchangePtr& ex);
  void replay(const http::Request& req, const http::ExchangePtr& ex);
  /// Wraps a handler so it runs only for an authenticated admin.
  http::Handler guarded(void (WebhookAdminApi::*method)(const http::Request&,
                                                        const http::ExchangePtr&));

  storage::Store& store_;
  AdminAuth& auth_;
  WebhookDispatcher* dispatcher_;
  Clock& clock_;
  bool allow_private_;
};

}  // namespace hawker::commerce

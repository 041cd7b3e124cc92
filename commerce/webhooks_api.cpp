#include "commerce/webhooks_api.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commerce/outbound.h"
#include "commerce/webhooks.h"
#include "core/log.h"

namespace hawker::commerce {
namespace {

constexpr const char* kLog = "webhooks";
constexpr size_t kMaxUrl = 2048;
constexpr size_t kMaxDescription = 500;
constexpr size_t kDeliveriesListed = 100;

http::Response invalid(std::string_view field, std::string_view detail) {
  auto r = http::Response::problem(422, "invalid-field", "A field is invalid",
                                   fmt::format("{}: {}", field, detail));
  return r;
}

http::Response not_found(std::string_view what) {
  return http::Response::problem(404, "not-found", "Not found", fmt::format("no {}", what));
}

http::Response storage_failed(const Error& e) {
  log::error(kLog, "storage: {}", e.message);
  return http::Response::problem(503, "storage-unavailable", "Storage unavailable",
                                 "the database could not be reached; try again");
}

http::Response no_store(http::Response r) {
  r.headers.set("Cache-Control", "no-store");
  return r;
}

}  // namespace

WebhookAdminApi::WebhookAdminApi(storage::Store& store, AdminAuth& auth,
                                 WebhookDispatcher* dispatcher, Clock& clock, bool allow_private)
    : store_(store),
      auth_(auth),
      dispatcher_(dispatcher),
      clock_(clock),
      allow_private_(allow_private) {}

http::Handler WebhookAdminApi::guarded(void (WebhookAdminApi::*method)(const http::Request&,
                                                                       const http::ExchangePtr&)) {
  return [this, method](const http::Request& req, http::ExchangePtr ex) {
    auth_.require(req, ex,
                  [this, method, &req, ex](const Principal&) { (this->*method)(req, ex); });
  };
}

Status WebhookAdminApi::add_routes(http::Router& router) {
  const std::string base = "/api/admin/webhooks";
  HAWKER_TRY_STATUS(router.add("POST", base, guarded(&WebhookAdminApi::create)), "route webhooks");
  HAWKER_TRY_STATUS(router.add("GET", base,
                               [this](const http::Request& req, http::ExchangePtr ex) {
                                 auth_.require(req, ex, [this, ex](const Principal&) { list(ex); });
                               }),
                    "route webhooks");
  HAWKER_TRY_STATUS(router.add("GET", base + "/{id}", guarded(&WebhookAdminApi::get)),
                    "route webhooks");
  HAWKER_TRY_STATUS(router.add("DELETE", base + "/{id}", guarded(&WebhookAdminApi::remove)),
                    "route webhooks");
  HAWKER_TRY_STATUS(router.add("POST", base + "/{id}/enable",
                               [this](const http::Request& req, http::ExchangePtr ex) {
                                 auth_.require(req, ex, [this, &req, ex](const Principal&) {
                                   set_enabled(req, ex, true);
                                 });
                               }),
                    "route webhooks");
  HAWKER_TRY_STATUS(router.add("POST", base + "/{id}/disable",
                               [this](const http::Request& req, http::ExchangePtr ex) {
                                 auth_.require(req, ex, [this, &req, ex](const Principal&) {
                                   set_enabled(req, ex, false);
                                 });
                               }),
                    "route webhooks");
  HAWKER_TRY_STATUS(
      router.add("GET", base + "/{id}/deliveries", guarded(&WebhookAdminApi::deliveries)),
      "route webhooks");
  HAWKER_TRY_STATUS(
      router.add("POST", base + "/deliveries/{id}/replay", guarded(&WebhookAdminApi::replay)),
      "route webhooks");
  return ok_status();
}

void WebhookAdminApi::create(const http::Request& req, const http::ExchangePtr& ex) {
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    ex->respond(http::Response::problem(400, "malformed-json", "Malformed JSON",
                                        "the body must be a JSON object"));
    return;
  }
  if (!body.contains("url") || !body["url"].is_string()) {
    ex->respond(invalid("url", "required, an http(s) URL"));
    return;
  }
  std::string url = body["url"].get<std::string>();
  if (url.size() > kMaxUrl) {
    ex->respond(invalid("url", fmt::format("longer than {} characters", kMaxUrl)));
    return;
  }
  if (auto s = check_outbound_url(url, allow_private_); !s) {
    ex->respond(invalid("url", s.error().message));
    return;
  }
  std::vector<std::string> events = {"*"};
  if (body.contains("events")) {
    auto parsed = parse_event_filters(body["events"]);
    if (!parsed) {
      ex->respond(invalid("events", parsed.error().message));
      return;
    }
    events = std::move(*parsed);
  }
  std::string description;
  if (body.contains("description") && !body["description"].is_null()) {
    if (!body["description"].is_string()) {
      ex->respond(invalid("description", "must be a string"));
      return;
    }
    description = body["description"].get<std::string>();
    if (description.size() > kMaxDescription) {
      ex->respond(invalid("description", fmt::format("longer than {} bytes", kMaxDescription)));
      return;
    }
  }
  int64_t now = clock_.wall_ms();
  store_.write<WebhookEndpoint>(
      [url = std::move(url), description = std::move(description), events = std::move(events),
       now](storage::Database& db) { return insert_endpoint(db, url, description, events, now); },
      [ex](Result<WebhookEndpoint> created) {
        if (!created) {
          ex->respond(storage_failed(created.error()));
          return;
        }
        nlohmann::json j = created->to_json();
        j["secret"] = created->secret.reveal();
        auto r = http::Response::json(201, j);
        r.headers.set("Location", "/api/admin/webhooks/" + created->id);
        ex->respond(no_store(std::move(r)));
      });
}

void WebhookAdminApi::list(const http::ExchangePtr& ex) {
  store_.read<std::vector<WebhookEndpoint>>(
      [](storage::Database& db) { return list_endpoints(db); },
      [ex](Result<std::vector<WebhookEndpoint>> all) {
        if (!all) {
          ex->respond(storage_failed(all.error()));
          return;
        }
        nlohmann::json list = nlohmann::json::array();
        for (const auto& e : *all) list.push_back(e.to_json());
        ex->respond(no_store(http::Response::json(200, {{"webhooks", std::move(list)}})));
      });
}

void WebhookAdminApi::get(const http::Request& req, const http::ExchangePtr& ex) {
  std::string id(req.param("id"));
  store_.read<std::optional<WebhookEndpoint>>(
      [id](storage::Database& db) { return find_endpoint(db, id); },
      [ex](Result<std::optional<WebhookEndpoint>> found) {
        if (!found) {
          ex->respond(storage_failed(found.error()));
        } else if (!found->has_value()) {
          ex->respond(not_found("webhook endpoint with this id"));
        } else {
          ex->respond(no_store(http::Response::json(200, (*found)->to_json())));
        }
      });
}

void WebhookAdminApi::remove(const http::Request& req, const http::ExchangePtr& ex) {
  std::string id(req.param("id"));
  store_.write<bool>([id](storage::Database& db) { return delete_endpoint(db, id); },
                     [ex](Result<bool> deleted) {
                       if (!deleted) {
                         ex->respond(storage_failed(deleted.error()));
                       } else if (!*deleted) {
                         ex->respond(not_found("webhook endpoint with this id"));
                       } else {
                         ex->respond(http::Response::empty(204));
                       }
                     });
}

void WebhookAdminApi::set_enabled(const http::Request& req, const http::ExchangePtr& ex,
                                  bool enabled) {
  std::string id(req.param("id"));
  store_.write<std::optional<WebhookEndpoint>>(
      [id, enabled](storage::Database& db) -> Result<std::optional<WebhookEndpoint>> {
        auto changed = set_endpoint_enabled(db, id, enabled, "disabled by the seller");
        if (!changed) return unexpected(std::move(changed).error());
        return find_endpoint(db, id);
      },
      [this, ex, enabled](Result<std::optional<WebhookEndpoint>> found) {
        if (!found) {
          ex->respond(storage_failed(found.error()));
        } else if (!found->has_value()) {
          ex->respond(not_found("webhook endpoint with this id"));
        } else {
          if (enabled && dispatcher_ != nullptr) dispatcher_->wake();
          ex->respond(no_store(http::Response::json(200, (*found)->to_json())));
        }
      });
}

void WebhookAdminApi::deliveries(const http::Request& req, const http::ExchangePtr& ex) {
  std::string id(req.param("id"));
  struct Found {
    bool endpoint = false;
    std::vector<Delivery> deliveries;
  };
  store_.read<Found>(
      [id](storage::Database& db) -> Result<Found> {
        auto endpoint = find_endpoint(db, id);
        if (!endpoint) return unexpected(std::move(endpoint).error());
        Found f;
        if (!endpoint->has_value()) return f;
        f.endpoint = true;
        auto list = list_deliveries(db, id, kDeliveriesListed);
        if (!list) return unexpected(std::move(list).error());
        f.deliveries = std::move(*list);
        return f;
      },
      [ex](Result<Found> found) {
        if (!found) {
          ex->respond(storage_failed(found.error()));
          return;
        }
        if (!found->endpoint) {
          ex->respond(not_found("webhook endpoint with this id"));
          return;
        }
        nlohmann::json list = nlohmann::json::array();
        for (const auto& d : found->deliveries) list.push_back(d.to_json());
        ex->respond(no_store(http::Response::json(200, {{"deliveries", std::move(list)}})));
      });
}

void WebhookAdminApi::replay(const http::Request& req, const http::ExchangePtr& ex) {
  std::string id(req.param("id"));
  int64_t now = clock_.wall_ms();
  store_.write<std::optional<Delivery>>(
      [id, now](storage::Database& db) { return replay_delivery(db, id, now); },
      [this, ex](Result<std::optional<Delivery>> replayed) {
        if (!replayed) {
          ex->respond(storage_failed(replayed.error()));
        } else if (!replayed->has_value()) {
          ex->respond(not_found("delivery with this id"));
        } else {
          if (dispatcher_ != nullptr) dispatcher_->wake();
          ex->respond(no_store(http::Response::json(202, (*replayed)->to_json())));
        }
      });
}

}  // namespace hawker::commerce

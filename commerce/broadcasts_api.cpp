#include "commerce/broadcasts_api.h"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "commerce/catalogue.h"
#include "commerce/json_body.h"
#include "core/log.h"

namespace hawker::commerce {
namespace {

constexpr const char* kLog = "broadcasts";
constexpr size_t kAdminListed = 500;

http::Response no_store(http::Response r) {
  r.headers.set("Cache-Control", "no-store");
  return r;
}

http::Response error_response(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
      return http::Response::problem(422, "invalid-field", "A field is invalid", e.message);
    case ErrorCode::kNotFound:
      return http::Response::problem(404, "not-found", "Not found", e.message);
    case ErrorCode::kConflict:
    case ErrorCode::kAlreadyExists:
      return http::Response::problem(409, "conflict", "Not allowed now", e.message);
    default:
      log::error(kLog, "storage: {}", e.message);
      return http::Response::problem(503, "storage-unavailable", "Storage unavailable",
                                     "the database could not be reached; try again");
  }
}

struct PublicListing {
  std::vector<Broadcast> broadcasts;
  std::map<std::string, Product> products;
};

nlohmann::json public_product(const Product& p) {
  return {{"id", p.id},
          {"title", p.title},
          {"price_minor", p.price_minor},
          {"currency", p.currency},
          {"stock", p.stock},
          {"images", p.images}};
}

/// Reads a broadcast's JSON body into `fields` (`creating`: every required field must be there);
/// when the body is not acceptable, answers the exchange with the problem and returns false.
bool read_fields(const http::Request& req, const http::ExchangePtr& ex, bool creating,
                 BroadcastFields& fields) {
  nlohmann::json body;
  if (auto problem = parse_json_object(req, body)) {
    ex->respond(std::move(*problem));
    return false;
  }
  std::string field;
  if (auto s = parse_broadcast_fields(body, creating, fields, field); !s) {
    ex->respond(field_problem(422, field, s.error().message));
    return false;
  }
  return true;
}

}  // namespace

Status queue_stream_key_mail(storage::Database& db, std::string_view from, const Streamer& streamer,
                             const Secret& key, StreamKeyMail::Reason reason,
                             const std::string& rtmp_url, const std::string& public_url,
                             int64_t now_ms) {
  StreamKeyMail mail;
  mail.reason = reason;
  mail.to = streamer.email;
  mail.channel = streamer.channel;
  mail.key = key;
  mail.key_hint = streamer.key_hint;
  mail.rtmp_url = rtmp_url;
  mail.watch_url = fmt::format("{}/watch/{}", public_url, streamer.channel);
  auto open = open_broadcasts_of(db, streamer.id);
  if (!open) return unexpected(std::move(open).error());
  for (const auto& b : *open) {
    if (b.ends_at_ms > now_ms || b.status == BroadcastStatus::kLive) {
      mail.schedule.push_back({b.title, b.starts_at_ms, b.ends_at_ms});
    }
  }
  auto queued = enqueue_mail(db, from, render_stream_key_mail(mail), now_ms);
  if (!queued) return unexpected(std::move(queued).error());
  return ok_status();
}

BroadcastApi::BroadcastApi(storage::Store& store, AdminAuth& auth, EventBus& bus, Clock& clock,
                           BroadcastApiOptions options)
    : store_(store), auth_(auth), bus_(bus), clock_(clock), options_(std::move(options)) {}

http::Handler BroadcastApi::guarded(void (BroadcastApi::*method)(const http::Request&,
                                                                 const http::ExchangePtr&)) {
  return [this, method](const http::Request& req, http::ExchangePtr ex) {
    auth_.require(req, ex,
                  [this, method, &req, ex](const Principal&) { (this->*method)(req, ex); });
  };
}

Status BroadcastApi::add_routes(http::Router& router) {
  const std::string base = "/api/admin/broadcasts";
  struct Route {
    const char* method;
    std::string path;
    void (BroadcastApi::*fn)(const http::Request&, const http::ExchangePtr&);
  };
  const Route routes[] = {
      {"POST", base, &BroadcastApi::create},
      {"GET", base, &BroadcastApi::list_admin},
      {"GET", base + "/{id}", &BroadcastApi::get_admin},
      {"PATCH", base + "/{id}", &BroadcastApi::patch},
      {"POST", base + "/{id}/cancel", &BroadcastApi::cancel},
      {"POST", base + "/{id}/pin", &BroadcastApi::pin},
      {"POST", "/api/admin/streamers/{channel}/rotate-key", &BroadcastApi::rotate_key},
  };
  for (const auto& r : routes) {
    HAWKER_TRY_STATUS(router.add(r.method, r.path, guarded(r.fn)), "route " + r.path);
  }
  HAWKER_TRY_STATUS(
      router.add("GET", "/api/broadcasts",
                 [this](const http::Request&, http::ExchangePtr ex) { list_public(ex); }),
      "route /api/broadcasts");
  return ok_status();
}

nlohmann::json BroadcastApi::admin_json(const Broadcast& b) const {
  nlohmann::json j = to_admin_json(b);
  std::string base = options_.public_url();
  j["playback_url"] = fmt::format("{}/live/{}/index.m3u8", base, b.channel);
  j["watch_url"] = fmt::format("{}/watch/{}", base, b.channel);
  j["rtmp_url"] = options_.rtmp_url();
  return j;
}

void BroadcastApi::create(const http::Request& req, const http::ExchangePtr& ex) {
  BroadcastFields fields;
  if (!read_fields(req, ex, true, fields)) return;
  int64_t now = clock_.wall_ms();
  std::string from = options_.mail_from;
  std::string rtmp = options_.rtmp_url();
  std::string base = options_.public_url();
  store_.write<CreatedBroadcast>(
      [fields, now, from, rtmp, base](storage::Database& db) -> Result<CreatedBroadcast> {
        auto created = create_broadcast(db, fields, now);
        if (!created) return created;
        // The streamer is told in the same transaction: a broadcast never exists without its
        // email queued. An existing streamer's key is not known (only its hash is stored), so
        // their email names it by its last characters.
        Streamer st;
        if (created->issued) {
          st = created->issued->streamer;
        } else {
          auto found = find_streamer_by_email(db, *fields.streamer_email);
          if (!found || !found->has_value()) {
            return unexpected(ErrorCode::kInternal, "streamer vanished");
          }
          st = **found;
        }
        Secret key = created->issued ? created->issued->key : Secret();
        HAWKER_TRY_STATUS(queue_stream_key_mail(db, from, st, key,
                                                StreamKeyMail::Reason::kScheduled, rtmp, base, now),
                          "queue the streamer's email");
        return created;
      },
      [this, ex](Result<CreatedBroadcast> created) {
        if (!created) {
          ex->respond(error_response(created.error()));
          return;
        }
        if (options_.mail_queued) options_.mail_queued();
        nlohmann::json j = admin_json(created->broadcast);
        j["streamer_created"] = created->issued.has_value();
        j["email_queued"] = true;
        // The one answer that carries a key: the streamer was created for this broadcast.
        if (created->issued) j["stream_key"] = created->issued->key.reveal();
        log::info(kLog, "broadcast={} channel={} scheduled {} to {}", created->broadcast.id,
                  created->broadcast.channel, format_rfc3339(created->broadcast.starts_at_ms),
                  format_rfc3339(created->broadcast.ends_at_ms));
        auto r = http::Response::json(201, j);
        r.headers.set("Location", "/api/admin/broadcasts/" + created->broadcast.id);
        ex->respond(no_store(std::move(r)));
      });
}

void BroadcastApi::list_admin(const http::Request&, const http::ExchangePtr& ex) {
  store_.read<std::vector<Broadcast>>(
      [](storage::Database& db) { return list_broadcasts(db, kAdminListed); },
      [this, ex](Result<std::vector<Broadcast>> all) {
        if (!all) {
          ex->respond(error_response(all.error()));
          return;
        }
        nlohmann::json list = nlohmann::json::array();
        for (const auto& b : *all) list.push_back(admin_json(b));
        ex->respond(no_store(http::Response::json(200, {{"broadcasts", std::move(list)}})));
      });
}

void BroadcastApi::get_admin(const http::Request& req, const http::ExchangePtr& ex) {
  std::string id(req.param("id"));
  store_.read<std::optional<Broadcast>>(
      [id](storage::Database& db) { return find_broadcast(db, id); },
      [this, ex](Result<std::optional<Broadcast>> found) {
        if (!found) {
          ex->respond(error_response(found.error()));
        } else if (!found->has_value()) {
          ex->respond(http::Response::problem(404, "not-found", "Not found", "no such broadcast"));
        } else {
          ex->respond(no_store(http::Response::json(200, admin_json(**found))));
        }
      });
}

void BroadcastApi::patch(const http::Request& req, const http::ExchangePtr& ex) {
  BroadcastFields fields;
  if (!read_fields(req, ex, false, fields)) return;
  std::string id(req.param("id"));
  int64_t now = clock_.wall_ms();
  store_.write<Broadcast>(
      [id, fields, now](storage::Database& db) { return update_broadcast(db, id, fields, now); },
      [this, ex](Result<Broadcast> updated) {
        if (!updated) {
          ex->respond(error_response(updated.error()));
          return;
        }
        ex->respond(no_store(http::Response::json(200, admin_json(*updated))));
      });
}

void BroadcastApi::cancel(const http::Request& req, const http::ExchangePtr& ex) {
  std::string id(req.param("id"));
  int64_t now = clock_.wall_ms();
  store_.write<Broadcast>(
      [id, now](storage::Database& db) { return cancel_broadcast(db, id, now); },
      [this, ex](Result<Broadcast> cancelled) {
        if (!cancelled) {
          ex->respond(error_response(cancelled.error()));
          return;
        }
        ex->respond(no_store(http::Response::json(200, admin_json(*cancelled))));
      });
}

void BroadcastApi::pin(const http::Request& req, const http::ExchangePtr& ex) {
  nlohmann::json body;
  if (auto problem = parse_json_object(req, body)) {
    ex->respond(std::move(*problem));
    return;
  }
  auto it = body.find("product_id");
  if (it == body.end() || !(it->is_string() || it->is_null())) {
    ex->respond(field_problem(422, "product_id", "required: a product id, or null to unpin"));
    return;
  }
  std::string product_id = it->is_null() ? "" : it->get<std::string>();
  std::string id(req.param("id"));
  int64_t now = clock_.wall_ms();
  struct Pinned {
    Broadcast broadcast;
    std::vector<Event> events;
  };
  store_.write<Pinned>(
      [id, product_id, now](storage::Database& db) -> Result<Pinned> {
        Pinned p;
        auto b = pin_product(db, id, product_id, now, p.events);
        if (!b) return unexpected(std::move(b).error());
        p.broadcast = std::move(*b);
        return p;
      },
      [this, ex](Result<Pinned> pinned) {
        if (!pinned) {
          ex->respond(error_response(pinned.error()));
          return;
        }
        bus_.publish(pinned->events);
        ex->respond(no_store(http::Response::json(200, admin_json(pinned->broadcast))));
      });
}

void BroadcastApi::rotate_key(const http::Request& req, const http::ExchangePtr& ex) {
  std::string channel(req.param("channel"));
  int64_t now = clock_.wall_ms();
  std::string from = options_.mail_from;
  std::string rtmp = options_.rtmp_url();
  std::string base = options_.public_url();
  store_.write<IssuedKey>(
      [channel, now, from, rtmp, base](storage::Database& db) -> Result<IssuedKey> {
        auto issued = rotate_stream_key(db, channel, now);
        if (!issued) return issued;
        HAWKER_TRY_STATUS(queue_stream_key_mail(db, from, issued->streamer, issued->key,
                                                StreamKeyMail::Reason::kRotated, rtmp, base, now),
                          "queue the streamer's email");
        return issued;
      },
      [this, ex, rtmp](Result<IssuedKey> issued) {
        if (!issued) {
          ex->respond(error_response(issued.error()));
          return;
        }
        if (options_.mail_queued) options_.mail_queued();
        log::info(kLog, "channel={} stream key rotated; the streamer is emailed",
                  issued->streamer.channel);
        ex->respond(no_store(http::Response::json(200, {{"channel", issued->streamer.channel},
                                                        {"email", issued->streamer.email},
                                                        {"rtmp_url", rtmp},
                                                        {"stream_key", issued->key.reveal()},
                                                        {"email_queued", true}})));
      });
}

void BroadcastApi::list_public(const http::ExchangePtr& ex) {
  int64_t now = clock_.wall_ms();
  store_.read<PublicListing>(
      [now](storage::Database& db) -> Result<PublicListing> {
        PublicListing out;
        auto current = current_broadcasts(db, now);
        if (!current) return unexpected(std::move(current).error());
        out.broadcasts = std::move(*current);
        for (const auto& b : out.broadcasts) {
          for (const auto& pid : b.product_ids) {
            if (out.products.count(pid)) continue;
            auto p = find_product(db, pid);
            if (!p) return unexpected(std::move(p).error());
            if (p->has_value() && (*p)->active) out.products.emplace(pid, std::move(**p));
          }
        }
        return out;
      },
      [this, ex](Result<PublicListing> listing) {
        if (!listing) {
          ex->respond(error_response(listing.error()));
          return;
        }
        std::string base = options_.public_url();
        nlohmann::json list = nlohmann::json::array();
        for (const auto& b : listing->broadcasts) {
          nlohmann::json products = nlohmann::json::array();
          for (const auto& pid : b.product_ids) {
            auto it = listing->products.find(pid);
            if (it != listing->products.end()) products.push_back(public_product(it->second));
          }
          nlohmann::json pinned = nullptr;
          if (auto it = listing->products.find(b.pinned_product_id);
              !b.pinned_product_id.empty() && it != listing->products.end()) {
            pinned = public_product(it->second);
          }
          list.push_back({{"id", b.id},
                          {"title", b.title},
                          {"description", b.description},
                          {"status", to_string(b.status)},
                          {"starts_at", format_rfc3339(b.starts_at_ms)},
                          {"ends_at", format_rfc3339(b.ends_at_ms)},
                          {"channel", b.channel},
                          {"playback_url", fmt::format("{}/live/{}/index.m3u8", base, b.channel)},
                          {"watch_url", fmt::format("{}/watch/{}", base, b.channel)},
                          {"events_url", fmt::format("{}/api/broadcasts/{}/events", base, b.id)},
                          {"products", std::move(products)},
                          {"pinned_product", std::move(pinned)}});
        }
        auto r = http::Response::json(200, {{"broadcasts", std::move(list)}});
        // Viewers' pages poll this; a short shared cache keeps a crowd off the database.
        r.headers.set("Cache-Control", "public, max-age=2");
        ex->respond(std::move(r));
      });
}

}  // namespace hawker::commerce

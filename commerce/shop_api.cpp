#include "commerce/shop_api.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commerce/catalogue.h"
#include "commerce/json_body.h"
#include "commerce/seller_auth.h"
#include "core/log.h"

namespace hawker::commerce {
namespace {

constexpr const char* kLog = "shop";

int status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kInvalidArgument:
      return 422;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

const char* slug_for(int status) {
  switch (status) {
    case 404:
      return "not-found";
    case 409:
      return "conflict";
    case 422:
      return "invalid";
    case 401:
      return "unauthenticated";
    case 403:
      return "forbidden";
    case 503:
      return "unavailable";
    default:
      return "internal";
  }
}

http::Response error_response(const Error& e) {
  int status = status_for(e.code);
  if (status >= 500) log::warn(kLog, "request failed: {}", e.message);
  http::Response r = http::Response::problem(status, slug_for(status), http::reason_phrase(status),
                                             status == 500 ? "internal error" : e.message);
  if (status == 503) r.headers.set("Retry-After", "1");
  return r;
}

http::Response no_store(http::Response r) {
  r.headers.set("Cache-Control", "no-store");
  return r;
}

http::Response stored_answer(StoredAnswer&& a) {
  http::Response r =
      http::Response::text(a.status, std::move(a.body),
                           a.status >= 400 ? "application/problem+json" : "application/json");
  if (a.replayed) r.headers.set("Idempotent-Replayed", "true");
  return no_store(std::move(r));
}

std::optional<int64_t> parse_time_param(const std::optional<std::string>& v, bool& bad) {
  if (!v) return std::nullopt;
  int64_t ms = 0;
  if (!parse_rfc3339(*v, ms)) {
    bad = true;
    return std::nullopt;
  }
  return ms;
}

}  // namespace

ShopApi::ShopApi(Loop& loop, storage::Store& store, AdminAuth& auth, const EventBus& bus,
                 Metrics& metrics, const Clock& clock, std::unique_ptr<PaymentProvider> provider,
                 ShopOptions options)
    : loop_(loop),
      store_(store),
      auth_(auth),
      bus_(bus),
      metrics_(metrics),
      clock_(clock),
      provider_(std::move(provider)),
      order_intake_(std::make_shared<OrderIntake>(
          [provider = provider_](const Order& o) { return provider->payment_url(o); })),
      options_(options),
      timer_(loop),
      reservation_latency_(
          metrics
              .histogram("hawker_order_reservation_seconds",
                         "Time from an order request to its answer (reservations and refusals)", {},
                         {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5})
              .with({})) {}

ShopApi::~ShopApi() { *alive_ = false; }

void ShopApi::count(std::string_view outcome, double by) {
  auto it = outcome_counters_.find(outcome);
  if (it == outcome_counters_.end()) {
    Counter& counter = metrics_
                           .counter("hawker_orders_total",
                                    "Order requests and order changes by outcome", {"outcome"})
                           .with({std::string(outcome)});
    it = outcome_counters_.emplace(std::string(outcome), &counter).first;
  }
  it->second->inc(by);
}

void ShopApi::admin(const http::Request& req, const http::ExchangePtr& ex, std::string_view role,
                    std::function<void()> then) {
  auth_.require(
      req, ex, [then = std::move(then)](const Principal&) { then(); }, role);
}

Status ShopApi::add_routes(http::Router& router) {
  using http::ExchangePtr;
  using http::Request;
  struct RouteDef {
    const char* method;
    const char* pattern;
    http::Handler handler;
  };
  std::vector<RouteDef> routes = {
      {"POST", "/api/admin/products",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleAdmin, [this, &r, ex] { create_product(r, ex); });
       }},
      {"GET", "/api/admin/products",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleSupport, [this, ex] { list_products(ex); });
       }},
      {"GET", "/api/admin/products/{id}",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleSupport, [this, &r, ex] { get_product(r, ex, true); });
       }},
      {"PATCH", "/api/admin/products/{id}",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleAdmin, [this, &r, ex] { patch_product(r, ex); });
       }},
      {"DELETE", "/api/admin/products/{id}",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleAdmin, [this, &r, ex] { delete_product(r, ex); });
       }},
      {"POST", "/api/admin/products/{id}/images",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleAdmin, [this, &r, ex] { upload_image(r, ex); });
       }},
      {"GET", "/api/admin/products/{id}/stock",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleSupport, [this, &r, ex] { product_stock(r, ex); });
       }},
      {"GET", "/api/products/{id}",
       [this](const Request& r, ExchangePtr ex) { get_product(r, ex, false); }},
      {"GET", "/media/products/{name}",
       [this](const Request& r, ExchangePtr ex) { serve_image(r, ex); }},
      {"POST", "/api/orders", [this](const Request& r, ExchangePtr ex) { create_order(r, ex); }},
      {"GET", "/api/orders/{token}",
       [this](const Request& r, ExchangePtr ex) { get_order(r, ex, OrderKey::kToken); }},
      {"POST", "/api/orders/{token}/cancel",
       [this](const Request& r, ExchangePtr ex) {
         order_action(r, ex, OrderKey::kToken, OrderTrigger::kCancel);
       }},
      {"POST", "/api/orders/{token}/pay",
       [this](const Request& r, ExchangePtr ex) { test_pay(r, ex); }},
      {"POST", "/api/payments/hosted/webhook",
       [this](const Request& r, ExchangePtr ex) { hosted_webhook(r, ex); }},
      {"GET", "/api/admin/orders",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleSupport, [this, &r, ex] { list_orders(r, ex); });
       }},
      {"GET", "/api/admin/orders/{id}",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleSupport, [this, &r, ex] { get_order(r, ex, OrderKey::kId); });
       }},
      {"POST", "/api/admin/orders/{id}/ship",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleAdmin,
               [this, &r, ex] { order_action(r, ex, OrderKey::kId, OrderTrigger::kShip); });
       }},
      {"POST", "/api/admin/orders/{id}/cancel",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleAdmin,
               [this, &r, ex] { order_action(r, ex, OrderKey::kId, OrderTrigger::kCancel); });
       }},
      {"POST", "/api/admin/orders/{id}/refund",
       [this](const Request& r, ExchangePtr ex) {
         admin(r, ex, kRoleAdmin,
               [this, &r, ex] { order_action(r, ex, OrderKey::kId, OrderTrigger::kRefund); });
       }},
  };
  for (auto& route : routes) {
    HAWKER_TRY_STATUS(router.add(route.method, route.pattern, std::move(route.handler)),
                      fmt::format("route {} {}", route.method, route.pattern));
  }
  return ok_status();
}

// ---- Catalogue ------------------------------------------------------------------------------

void ShopApi::create_product(const http::Request& req, const http::ExchangePtr& ex) {
  nlohmann::json body;
  if (auto bad = parse_json_object(req, body)) return ex->respond(std::move(*bad));
  ProductFields fields;
  if (auto e = parse_product_fields(body, true, fields)) {
    return ex->respond(field_problem(422, e->field, e->message));
  }
  if (!fields.low_stock_threshold)
    fields.low_stock_threshold = options_.default_low_stock_threshold;
  int64_t now = clock_.wall_ms();
  using Out = std::pair<Product, std::vector<Event>>;
  store_.write<Out>(
      [fields, now](storage::Database& db) -> Result<Out> {
        std::vector<Event> events;
        auto p = commerce::create_product(db, fields, now, events);
        if (!p) return unexpected(std::move(p).error());
        return Out{std::move(*p), std::move(events)};
      },
      [this, ex, alive = alive_](Result<Out> r) {
        if (!r) return ex->respond(error_response(r.error()));
        if (*alive) bus_.publish(r->second);
        http::Response resp = http::Response::json(201, to_json(r->first));
        resp.headers.set("Location", "/api/admin/products/" + r->first.id);
        ex->respond(no_store(std::move(resp)));
      });
}

void ShopApi::list_products(const http::ExchangePtr& ex) {
  store_.read<std::vector<Product>>(
      [](storage::Database& db) { return commerce::list_products(db); },
      [ex](Result<std::vector<Product>> r) {
        if (!r) return ex->respond(error_response(r.error()));
        nlohmann::json list = nlohmann::json::array();
        for (const auto& p : *r) list.push_back(to_json(p));
        ex->respond(no_store(http::Response::json(200, {{"products", list}})));
      });
}

void ShopApi::get_product(const http::Request& req, const http::ExchangePtr& ex, bool admin) {
  std::string id(req.param("id"));
  store_.read<std::optional<Product>>([id](storage::Database& db) { return find_product(db, id); },
                                      [ex, admin](Result<std::optional<Product>> r) {
                                        if (!r) return ex->respond(error_response(r.error()));
                                        if (!r->has_value() || (!admin && !(*r)->active)) {
                                          return ex->respond(http::Response::problem(
                                              404, "not-found", "Not Found", "no such product"));
                                        }
                                        nlohmann::json j = to_json(**r);
                                        if (!admin) {
                                          j.erase("low_stock_threshold");
                                          j.erase("created_at");
                                          j.erase("updated_at");
                                          j["sold_out"] = (*r)->stock == 0;
                                        }
                                        // Live stock: never cached by a browser or an edge in front
                                        // of hawker.
                                        ex->respond(no_store(http::Response::json(200, j)));
                                      });
}

void ShopApi::patch_product(const http::Request& req, const http::ExchangePtr& ex) {
  nlohmann::json body;
  if (auto bad = parse_json_object(req, body)) return ex->respond(std::move(*bad));
  ProductFields fields;
  if (auto e = parse_product_fields(body, false, fields)) {
    return ex->respond(field_problem(422, e->field, e->message));
  }
  std::string id(req.param("id"));
  int64_t now = clock_.wall_ms();
  using Out = std::pair<Product, std::vector<Event>>;
  store_.write<Out>(
      [id, fields, now](storage::Database& db) -> Result<Out> {
        std::vector<Event> events;
        auto p = update_product(db, id, fields, now, events);
        if (!p) return unexpected(std::move(p).error());
        return Out{std::move(*p), std::move(events)};
      },
      [this, ex, alive = alive_](Result<Out> r) {
        if (!r) return ex->respond(error_response(r.error()));
        if (*alive) bus_.publish(r->second);
        ex->respond(no_store(http::Response::json(200, to_json(r->first))));
      });
}

void ShopApi::delete_product(const http::Request& req, const http::ExchangePtr& ex) {
  std::string id(req.param("id"));
  int64_t now = clock_.wall_ms();
  store_.write([id, now](storage::Database& db) { return commerce::delete_product(db, id, now); },
               [ex](Status s) {
                 if (!s) return ex->respond(error_response(s.error()));
                 ex->respond(http::Response::empty(204));
               });
}

void ShopApi::upload_image(const http::Request& req, const http::ExchangePtr& ex) {
  std::string declared(req.header("Content-Type").value_or(""));
  declared = declared.substr(0, declared.find(';'));
  if (declared != "image/jpeg" && declared != "image/png" && declared != "image/webp") {
    return ex->respond(http::Response::problem(415, "unsupported-media-type",
                                               "Unsupported media type",
                                               "send image/jpeg, image/png or image/webp"));
  }
  if (req.body.size() > kMaxImageBytes) {
    return ex->respond(http::Response::problem(413, "too-large", "Image too large",
                                               "images are limited to 2 MiB"));
  }
  if (sniff_image_type(req.body) != declared) {
    return ex->respond(
        http::Response::problem(415, "image-type-mismatch", "Image bytes do not match",
                                fmt::format("the body is not a {} image", declared)));
  }
  std::string id(req.param("id"));
  int64_t now = clock_.wall_ms();
  store_.write<StoredImage>(
      [id, declared, bytes = req.body, now](storage::Database& db) {
        return add_product_image(db, id, declared, bytes, now);
      },
      [ex](Result<StoredImage> r) {
        if (!r) return ex->respond(error_response(r.error()));
        ex->respond(http::Response::json(201, {{"name", r->name},
                                               {"url", "/media/products/" + r->name},
                                               {"content_type", r->content_type},
                                               {"bytes", r->bytes.size()}}));
      });
}

void ShopApi::serve_image(const http::Request& req, const http::ExchangePtr& ex) {
  std::string name(req.param("name"));
  store_.read<std::optional<StoredImage>>(
      [name](storage::Database& db) { return find_image(db, name); },
      [ex](Result<std::optional<StoredImage>> r) {
        if (!r) return ex->respond(error_response(r.error()));
        if (!r->has_value()) {
          return ex->respond(
              http::Response::problem(404, "not-found", "Not Found", "no such image"));
        }
        auto bytes = std::make_shared<std::vector<uint8_t>>((*r)->bytes.begin(), (*r)->bytes.end());
        http::Response resp = http::Response::bytes(200, std::move(bytes), (*r)->content_type);
        // Names carry a hash of the bytes: a new image is a new URL, so this one never changes.
        resp.headers.set("Cache-Control", "public, max-age=31536000, immutable");
        resp.headers.set("ETag", "\"" + (*r)->name + "\"");
        resp.headers.set("X-Content-Type-Options", "nosniff");
        ex->respond(std::move(resp));
      });
}

void ShopApi::product_stock(const http::Request& req, const http::ExchangePtr& ex) {
  std::string id(req.param("id"));
  store_.read<StockLedger>(
      [id](storage::Database& db) { return stock_ledger(db, id); },
      [ex](Result<StockLedger> r) {
        if (!r) return ex->respond(error_response(r.error()));
        ex->respond(no_store(http::Response::json(200, {{"stock", r->stock},
                                                        {"reserved", r->reserved},
                                                        {"sold", r->sold},
                                                        {"stocked", r->stocked},
                                                        {"movements_sum", r->movements}})));
      });
}

// ---- Orders ---------------------------------------------------------------------------------

void ShopApi::create_order(const http::Request& req, const http::ExchangePtr& ex) {
  int64_t started = clock_.steady_ms();
  auto key_header = req.header("Idempotency-Key");
  if (!key_header || key_header->empty()) {
    count("invalid");
    return ex->respond(http::Response::problem(400, "idempotency-key-missing",
                                               "Idempotency-Key required",
                                               "send a unique Idempotency-Key header per order"));
  }
  if (key_header->size() > kMaxIdempotencyKey) {
    count("invalid");
    return ex->respond(http::Response::problem(
        400, "idempotency-key-invalid", "Idempotency-Key too long", "at most 255 characters"));
  }
  if (auto bad = json_content_type_problem(req)) {
    count("invalid");
    return ex->respond(std::move(*bad));
  }
  // Every order of a sale passes here on the loop: the usual body is read without a tree.
  OrderRequest order;
  std::optional<FieldError> field_error;
  if (read_flat_order_request(req.body, order, field_error) == FlatRead::kNeedsTree) {
    nlohmann::json body;
    if (auto bad = parse_json_object(req, body)) {
      count("invalid");
      return ex->respond(std::move(*bad));
    }
    order = OrderRequest{};
    field_error = parse_order_request(body, order);
  }
  if (field_error) {
    count("invalid");
    return ex->respond(field_problem(422, field_error->field, field_error->message));
  }
  std::string key(*key_header);
  if (!in_flight_keys_.insert(key).second) {
    count("in_flight");
    return ex->respond(http::Response::problem(
        409, "idempotency-key-in-flight", "Request in progress",
        "a request with this Idempotency-Key is still being processed; retry shortly"));
  }
  OrderAttempt attempt{key, std::move(order), clock_.wall_ms(), options_.payment_window_ms};
  // Reserved with the other orders that queue up meanwhile: one UPDATE per product for all of
  // them, their rows written many to a statement (OrderIntake, storage::JobGroup).
  store_.write<OrderAttempt, Reservation>(
      order_intake_, std::move(attempt),
      [this, ex, key = std::move(key), started, alive = alive_](Result<Reservation> r) {
        if (!*alive) return;
        in_flight_keys_.erase(key);
        reservation_latency_.observe(static_cast<double>(clock_.steady_ms() - started) / 1000.0);
        if (!r) {
          count("error");
          return ex->respond(error_response(r.error()));
        }
        count(r->answer.outcome);
        bus_.publish(r->events);
        if (r->order) note_expiry(r->order->expires_at_ms);
        ex->respond(stored_answer(std::move(r->answer)));
      });
}

void ShopApi::get_order(const http::Request& req, const http::ExchangePtr& ex, OrderKey key) {
  std::string value(req.param(key == OrderKey::kToken ? "token" : "id"));
  store_.read<std::optional<Order>>(
      [value, key](storage::Database& db) {
        return key == OrderKey::kToken ? find_order_by_token(db, value)
                                       : find_order_by_id(db, value);
      },
      [this, ex, key](Result<std::optional<Order>> r) {
        if (!r) return ex->respond(error_response(r.error()));
        if (!r->has_value()) {
          return ex->respond(
              http::Response::problem(404, "not-found", "Not Found", "no such order"));
        }
        Order& o = **r;
        // The sweep may lag the window by a tick; the buyer sees the truth.
        if (o.status == OrderStatus::kReserved && o.expires_at_ms <= clock_.wall_ms()) {
          o.status = OrderStatus::kExpired;
        }
        nlohmann::json j = to_json(o, key == OrderKey::kToken);
        if (o.status == OrderStatus::kReserved) j["payment_url"] = provider_->payment_url(o);
        ex->respond(no_store(http::Response::json(200, j)));
      });
}

void ShopApi::list_orders(const http::Request& req, const http::ExchangePtr& ex) {
  OrderFilter f;
  if (auto s = req.query("status")) {
    f.status = parse_order_status(*s);
    if (!f.status) return ex->respond(field_problem(400, "status", "unknown order status"));
  }
  if (auto p = req.query("product_id")) f.product_id = *p;
  bool bad = false;
  f.created_from_ms = parse_time_param(req.query("from"), bad);
  f.created_to_ms = parse_time_param(req.query("to"), bad);
  if (bad) return ex->respond(field_problem(400, "from/to", "RFC 3339 timestamps"));
  if (auto l = req.query("limit")) {
    char* end = nullptr;
    long v = std::strtol(l->c_str(), &end, 10);
    if (end == l->c_str() || *end != '\0' || v < 1 || v > 1000) {
      return ex->respond(field_problem(400, "limit", "1 to 1000"));
    }
    f.limit = v;
  }
  store_.read<std::vector<Order>>(
      [f](storage::Database& db) { return commerce::list_orders(db, f); },
      [ex](Result<std::vector<Order>> r) {
        if (!r) return ex->respond(error_response(r.error()));
        nlohmann::json list = nlohmann::json::array();
        for (const auto& o : *r) list.push_back(to_json(o, false));
        ex->respond(no_store(http::Response::json(200, {{"orders", list}})));
      });
}

void ShopApi::answer_change(const http::ExchangePtr& ex, Result<OrderChange> change,
                            bool with_token) {
  if (!change) return ex->respond(error_response(change.error()));
  bus_.publish(change->events);
  ex->respond(no_store(http::Response::json(200, to_json(change->order, with_token))));
}

void ShopApi::order_action(const http::Request& req, const http::ExchangePtr& ex, OrderKey key,
                           OrderTrigger trigger) {
  bool restock = false;
  if (trigger == OrderTrigger::kRefund && !req.body.empty()) {
    nlohmann::json body;
    if (auto bad = parse_json_object(req, body)) return ex->respond(std::move(*bad));
    if (body.contains("restock")) {
      if (!body["restock"].is_boolean()) {
        return ex->respond(field_problem(422, "restock", "must be true or false"));
      }
      restock = body["restock"].get<bool>();
    }
  }
  std::string value(req.param(key == OrderKey::kToken ? "token" : "id"));
  int64_t now = clock_.wall_ms();
  store_.write<OrderChange>(
      [key, value, trigger, restock, now](storage::Database& db) {
        return apply_trigger(db, key, value, trigger, restock, now);
      },
      [this, ex, key, alive = alive_](Result<OrderChange> r) {
        if (!*alive) return;
        if (r) count(to_string(r->order.status));
        answer_change(ex, std::move(r), key == OrderKey::kToken);
      });
}

// ---- Payments -------------------------------------------------------------------------------

void ShopApi::test_pay(const http::Request& req, const http::ExchangePtr& ex) {
  if (!provider_->accepts_buyer_confirmation()) {
    return ex->respond(http::Response::problem(
        403, "payment-provider", "Pay at the provider",
        "this shop takes payment through its hosted checkout, not on hawker"));
  }
  std::string token(req.param("token"));
  int64_t now = clock_.wall_ms();
  store_.write<PaymentResult>(
      [token, now](storage::Database& db) -> Result<PaymentResult> {
        auto o = find_order_by_token(db, token);
        if (!o) return unexpected(std::move(o).error());
        if (!o->has_value()) return unexpected(ErrorCode::kNotFound, "no such order");
        // Virtual money: one payment per order, referenced by the order itself.
        PaymentConfirmation pay{"test", "test_" + (*o)->id, (*o)->amount_minor, (*o)->currency};
        return apply_payment(db, OrderKey::kToken, token, pay, now);
      },
      [this, ex, alive = alive_](Result<PaymentResult> r) {
        if (!*alive) return;
        if (!r) return ex->respond(error_response(r.error()));
        if (!r->duplicate) count(to_string(r->change.order.status));
        answer_change(ex, std::move(r->change), true);
      });
}

void ShopApi::hosted_webhook(const http::Request& req, const http::ExchangePtr& ex) {
  const auto* hosted = dynamic_cast<const HostedPaymentProvider*>(provider_.get());
  if (hosted == nullptr) {
    return ex->respond(http::Response::problem(404, "not-found", "Not Found",
                                               "the hosted payment provider is not configured"));
  }
  int64_t now = clock_.wall_ms();
  Status verified = verify_hosted_webhook(hosted->secret(), req.header("webhook-id").value_or(""),
                                          req.header("webhook-timestamp").value_or(""),
                                          req.header("webhook-signature").value_or(""), req.body,
                                          now, options_.webhook_tolerance_s);
  if (!verified) {
    log::warn(kLog, "hosted payment webhook refused from {}: {}", req.remote,
              verified.error().message);
    return ex->respond(http::Response::problem(401, "bad-signature", "Signature refused",
                                               verified.error().message));
  }
  auto payment = parse_hosted_payment(req.body);
  if (!payment) {
    return ex->respond(
        http::Response::problem(422, "invalid", "Invalid payment", payment.error().message));
  }
  if (payment->type != "payment.succeeded") {
    // Other notices (failed, pending) leave the reservation to its window.
    return ex->respond(http::Response::json(200, {{"ignored", payment->type}}));
  }
  PaymentConfirmation confirmation{"hosted", payment->payment_id, payment->amount_minor,
                                   payment->currency};
  std::string order_id = payment->order_id;
  store_.write<PaymentResult>(
      [order_id, confirmation, now](storage::Database& db) {
        return apply_payment(db, OrderKey::kId, order_id, confirmation, now);
      },
      [this, ex, alive = alive_](Result<PaymentResult> r) {
        if (!*alive) return;
        if (!r) return ex->respond(error_response(r.error()));
        if (!r->duplicate) count(to_string(r->change.order.status));
        bus_.publish(r->change.events);
        ex->respond(http::Response::json(200, {{"order_id", r->change.order.id},
                                               {"status", to_string(r->change.order.status)},
                                               {"duplicate", r->duplicate}}));
      });
}

// ---- Expiry ---------------------------------------------------------------------------------

void ShopApi::note_expiry(int64_t expires_at_ms) {
  if (!next_expiry_ms_ || expires_at_ms < *next_expiry_ms_) next_expiry_ms_ = expires_at_ms;
}

void ShopApi::start() {
  store_.write([](storage::Database& db) { return OrderIntake::prepare(db); },
               [](Status s) {
                 if (!s) log::warn(kLog, "preparing the order statements: {}", s.error().message);
               });
  // Reservations that ran out while hawker was down expire now: the first tick sweeps.
  next_expiry_ms_ = 0;
  tick();
  timer_.start(static_cast<uint64_t>(options_.expiry_tick_ms),
               static_cast<uint64_t>(options_.expiry_tick_ms), [this] { tick(); });
}

void ShopApi::stop() {
  stopped_ = true;
  timer_.stop();
}

void ShopApi::tick() {
  if (stopped_ || sweeping_ || !next_expiry_ms_) return;
  int64_t now = clock_.wall_ms();
  if (*next_expiry_ms_ > now) return;
  sweeping_ = true;
  size_t limit = options_.expiry_batch;
  store_.write<ExpirySweep>(
      [now, limit](storage::Database& db) { return expire_overdue(db, now, limit); },
      [this, alive = alive_](Result<ExpirySweep> r) {
        if (!*alive) return;
        sweeping_ = false;
        if (!r) {
          log::warn(kLog, "expiry sweep failed: {}", r.error().message);
          return;  // next_expiry_ms_ unchanged: the next tick tries again
        }
        if (r->expired > 0) {
          log::info(kLog, "expired {} unpaid reservation(s)", r->expired);
          count("expired", static_cast<double>(r->expired));
        }
        bus_.publish(r->events);
        // Callbacks run in commit order: reservations committed before the sweep are in its
        // answer, later ones lower next_expiry_ms_ through note_expiry when they land.
        next_expiry_ms_ = r->next_expiry_ms;
      });
}

}  // namespace hawker::commerce

#include "commerce/catalogue.h"

#include <fmt/format.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/secret.h"

namespace hawker::commerce {
namespace {

constexpr storage::Migration kMigrations[] = {
    {130, "products, images, stock movements", R"sql(
CREATE TABLE products (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
  currency TEXT NOT NULL,
  stock INTEGER NOT NULL CHECK (stock >= 0),
  low_stock_threshold INTEGER NOT NULL DEFAULT 10,
  active INTEGER NOT NULL DEFAULT 1,
  deleted INTEGER NOT NULL DEFAULT 0,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
CREATE TABLE product_images (
  name TEXT PRIMARY KEY,
  product_id TEXT NOT NULL REFERENCES products(id),
  content_type TEXT NOT NULL,
  bytes BLOB NOT NULL,
  created_at_ms INTEGER NOT NULL
);
CREATE INDEX product_images_product ON product_images(product_id, created_at_ms);
CREATE TABLE stock_movements (
  id INTEGER PRIMARY KEY,
  product_id TEXT NOT NULL REFERENCES products(id),
  kind TEXT NOT NULL CHECK (kind IN ('adjustment', 'reservation', 'release', 'sale', 'restock')),
  delta INTEGER NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  order_id TEXT,
  created_at_ms INTEGER NOT NULL
);
CREATE INDEX stock_movements_product ON stock_movements(product_id, id);
)sql"},
    // `kind IN (...)` made SQLite build a temporary index on every INSERT of a movement (one
    // per order); the same check as ORs does not. Nothing references stock_movements.
    {131, "stock movements: kind check without an IN list", R"sql(
CREATE TABLE stock_movements_131 (
  id INTEGER PRIMARY KEY,
  product_id TEXT NOT NULL REFERENCES products(id),
  kind TEXT NOT NULL CHECK (kind = 'adjustment' OR kind = 'reservation' OR kind = 'release' OR
                            kind = 'sale' OR kind = 'restock'),
  delta INTEGER NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  order_id TEXT,
  created_at_ms INTEGER NOT NULL
);
INSERT INTO stock_movements_131 SELECT id, product_id, kind, delta, reason, order_id,
  created_at_ms FROM stock_movements;
DROP TABLE stock_movements;
ALTER TABLE stock_movements_131 RENAME TO stock_movements;
CREATE INDEX stock_movements_product ON stock_movements(product_id, id);
)sql"},
};

constexpr std::string_view kColumns =
    "id, title, description, price_minor, currency, stock, low_stock_threshold, active, "
    "created_at_ms, updated_at_ms";

Product read_product(const storage::Statement& s) {
  Product p;
  p.id = std::string(s.column_text(0));
  p.title = std::string(s.column_text(1));
  p.description = std::string(s.column_text(2));
  p.price_minor = s.column_int64(3);
  p.currency = std::string(s.column_text(4));
  p.stock = s.column_int64(5);
  p.low_stock_threshold = s.column_int64(6);
  p.active = s.column_int64(7) != 0;
  p.created_at_ms = s.column_int64(8);
  p.updated_at_ms = s.column_int64(9);
  return p;
}

Status load_images(storage::Database& db, Product& p) {
  auto stmt =
      db.cached("SELECT name FROM product_images WHERE product_id = ? ORDER BY created_at_ms");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, p.id);
  while (true) {
    auto step = (*stmt)->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kDone) break;
    p.images.emplace_back((*stmt)->column_text(0));
  }
  return ok_status();
}

std::optional<FieldError> read_string(const nlohmann::json& body, const char* name, size_t max_len,
                                      bool allow_empty, std::optional<std::string>& out) {
  if (!body.contains(name)) return std::nullopt;
  const auto& v = body[name];
  if (!v.is_string()) return FieldError{name, "must be a string"};
  std::string s = v.get<std::string>();
  if (s.empty() && !allow_empty) return FieldError{name, "must not be empty"};
  if (s.size() > max_len) return FieldError{name, fmt::format("at most {} bytes", max_len)};
  out = std::move(s);
  return std::nullopt;
}

std::optional<FieldError> read_int(const nlohmann::json& body, const char* name, int64_t min,
                                   int64_t max, std::optional<int64_t>& out) {
  if (!body.contains(name)) return std::nullopt;
  const auto& v = body[name];
  if (!v.is_number_integer()) return FieldError{name, "must be a whole number"};
  int64_t n = v.get<int64_t>();
  if (n < min || n > max) return FieldError{name, fmt::format("must be {} to {}", min, max)};
  out = n;
  return std::nullopt;
}

}  // namespace

nlohmann::json to_json(const Product& p) {
  nlohmann::json images = nlohmann::json::array();
  for (const auto& name : p.images) images.push_back("/media/products/" + name);
  return {{"id", p.id},
          {"title", p.title},
          {"description", p.description},
          {"price_minor", p.price_minor},
          {"currency", p.currency},
          {"stock", p.stock},
          {"low_stock_threshold", p.low_stock_threshold},
          {"active", p.active},
          {"images", images},
          {"created_at", format_rfc3339_ms(p.created_at_ms)},
          {"updated_at", format_rfc3339_ms(p.updated_at_ms)}};
}

bool valid_currency(std::string_view code) {
  if (code.size() != 3) return false;
  for (char c : code) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

std::optional<FieldError> parse_product_fields(const nlohmann::json& body, bool creating,
                                               ProductFields& out) {
  static const char* kKnown[] = {"title", "description",         "price_minor", "currency",
                                 "stock", "low_stock_threshold", "active",      "stock_reason"};
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) return FieldError{key, "unknown field"};
  }
  constexpr int64_t kMaxCount = 1'000'000'000;
  if (auto e = read_string(body, "title", 200, false, out.title)) return e;
  if (auto e = read_string(body, "description", 10'000, true, out.description)) return e;
  if (auto e = read_int(body, "price_minor", 0, int64_t{1} << 50, out.price_minor)) return e;
  if (auto e = read_string(body, "currency", 3, false, out.currency)) return e;
  if (out.currency && !valid_currency(*out.currency)) {
    return FieldError{"currency", "must be an ISO 4217 code such as EUR"};
  }
  if (auto e = read_int(body, "stock", 0, kMaxCount, out.stock)) return e;
  if (auto e = read_int(body, "low_stock_threshold", 0, kMaxCount, out.low_stock_threshold)) {
    return e;
  }
  if (body.contains("active")) {
    if (!body["active"].is_boolean()) return FieldError{"active", "must be true or false"};
    out.active = body["active"].get<bool>();
  }
  if (auto e = read_string(body, "stock_reason", 500, true, out.stock_reason)) return e;
  if (creating) {
    if (!out.title) return FieldError{"title", "required"};
    if (!out.price_minor) return FieldError{"price_minor", "required"};
    if (!out.currency) return FieldError{"currency", "required"};
  }
  return std::nullopt;
}

const char* to_string(MovementKind kind) {
  switch (kind) {
    case MovementKind::kAdjustment:
      return "adjustment";
    case MovementKind::kReservation:
      return "reservation";
    case MovementKind::kRelease:
      return "release";
    case MovementKind::kSale:
      return "sale";
    case MovementKind::kRestock:
      return "restock";
  }
  return "adjustment";
}

std::span<const storage::Migration> catalogue_migrations() { return kMigrations; }

Status record_movement(storage::Database& db, std::string_view product_id, MovementKind kind,
                       int64_t delta, std::string_view reason, std::string_view order_id,
                       int64_t now_ms) {
  auto stmt = db.cached(
      "INSERT INTO stock_movements (product_id, kind, delta, reason, order_id, created_at_ms) "
      "VALUES (?, ?, ?, ?, ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, product_id).bind_text(2, to_string(kind)).bind_int64(3, delta);
  (*stmt)->bind_text(4, reason).bind_int64(6, now_ms);
  if (order_id.empty()) {
    (*stmt)->bind_null(5);
  } else {
    (*stmt)->bind_text(5, order_id);
  }
  return (*stmt)->run();
}

Result<int64_t> movement_sum(storage::Database& db, std::string_view product_id) {
  auto stmt = db.cached("SELECT coalesce(sum(delta), 0) FROM stock_movements WHERE product_id = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, product_id);
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  return (*stmt)->column_int64(0);
}

Status append_stock_events(storage::Database& db, const std::string& product_id, int64_t before,
                           int64_t after, int64_t threshold, int64_t now_ms,
                           std::vector<Event>& events) {
  if (before == after) return ok_status();
  auto push = [&](std::string_view type) -> Status {
    fmt::memory_buffer data;
    data.append(std::string_view(R"({"product_id":")"));
    log::append_json_escaped(data, product_id);
    fmt::format_to(std::back_inserter(data), R"(","stock":{}}})", after);
    auto e = append_event_text(db, type, fmt::to_string(data), now_ms);
    if (!e) return unexpected(std::move(e).error());
    events.push_back(std::move(*e));
    return ok_status();
  };
  HAWKER_TRY_STATUS(push(event_type::kStockChanged), "stock.changed");
  if (after == 0 && before > 0) {
    HAWKER_TRY_STATUS(push(event_type::kStockSoldOut), "stock.sold_out");
  } else if (after > 0 && after <= threshold && before > threshold) {
    HAWKER_TRY_STATUS(push(event_type::kStockLow), "stock.low");
  }
  return ok_status();
}

Result<Product> create_product(storage::Database& db, const ProductFields& f, int64_t now_ms,
                               std::vector<Event>& events) {
  auto id = random_token("prod_", 9);
  if (!id) return unexpected(std::move(id).error());
  Product p;
  p.id = id->reveal();
  p.title = f.title.value_or("");
  p.description = f.description.value_or("");
  p.price_minor = f.price_minor.value_or(0);
  p.currency = f.currency.value_or("");
  p.stock = f.stock.value_or(0);
  p.low_stock_threshold = f.low_stock_threshold.value_or(kDefaultLowStockThreshold);
  p.active = f.active.value_or(true);
  p.created_at_ms = now_ms;
  p.updated_at_ms = now_ms;
  auto stmt = db.cached(
      "INSERT INTO products (id, title, description, price_minor, currency, stock, "
      "low_stock_threshold, active, created_at_ms, updated_at_ms) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, p.id)
      .bind_text(2, p.title)
      .bind_text(3, p.description)
      .bind_int64(4, p.price_minor)
      .bind_text(5, p.currency)
      .bind_int64(6, p.stock)
      .bind_int64(7, p.low_stock_threshold)
      .bind_int64(8, p.active ? 1 : 0)
      .bind_int64(9, now_ms)
      .bind_int64(10, now_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "insert product");
  if (p.stock != 0) {
    HAWKER_TRY_STATUS(record_movement(db, p.id, MovementKind::kAdjustment, p.stock,
                                      f.stock_reason.value_or("initial stock"), "", now_ms),
                      "initial stock");
  }
  HAWKER_TRY_STATUS(
      append_stock_events(db, p.id, 0, p.stock, p.low_stock_threshold, now_ms, events),
      "stock events");
  return p;
}

Result<std::optional<Product>> find_product(storage::Database& db, std::string_view id) {
  auto stmt =
      db.cached(fmt::format("SELECT {} FROM products WHERE id = ? AND deleted = 0", kColumns));
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, id);
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone) return std::optional<Product>{};
  Product p = read_product(**stmt);
  (*stmt)->reset();
  HAWKER_TRY_STATUS(load_images(db, p), "product images");
  return std::optional<Product>{std::move(p)};
}

Result<std::vector<Product>> list_products(storage::Database& db) {
  auto stmt = db.cached(
      fmt::format("SELECT {} FROM products WHERE deleted = 0 ORDER BY created_at_ms", kColumns));
  if (!stmt) return unexpected(std::move(stmt).error());
  std::vector<Product> out;
  while (true) {
    auto step = (*stmt)->step();
    if (!step) return unexpected(std::move(step).error());
    if (*step == storage::Statement::Step::kDone) break;
    out.push_back(read_product(**stmt));
  }
  (*stmt)->reset();
  for (auto& p : out) HAWKER_TRY_STATUS(load_images(db, p), "product images");
  return out;
}

Result<Product> update_product(storage::Database& db, std::string_view id, const ProductFields& f,
                               int64_t now_ms, std::vector<Event>& events) {
  auto found = find_product(db, id);
  if (!found) return unexpected(std::move(found).error());
  if (!found->has_value()) return unexpected(ErrorCode::kNotFound, "no such product");
  Product p = std::move(**found);
  int64_t before = p.stock;
  if (f.title) p.title = *f.title;
  if (f.description) p.description = *f.description;
  if (f.price_minor) p.price_minor = *f.price_minor;
  if (f.currency) p.currency = *f.currency;
  if (f.low_stock_threshold) p.low_stock_threshold = *f.low_stock_threshold;
  if (f.active) p.active = *f.active;
  p.updated_at_ms = now_ms;
  // Stock is set relative to the row as it is now, inside this transaction, so a reservation
  // committed a moment earlier is never overwritten.
  auto stmt = db.cached(
      "UPDATE products SET title = ?, description = ?, price_minor = ?, currency = ?, "
      "low_stock_threshold = ?, active = ?, updated_at_ms = ?, stock = coalesce(?, stock) "
      "WHERE id = ? RETURNING stock");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, p.title)
      .bind_text(2, p.description)
      .bind_int64(3, p.price_minor)
      .bind_text(4, p.currency)
      .bind_int64(5, p.low_stock_threshold)
      .bind_int64(6, p.active ? 1 : 0)
      .bind_int64(7, now_ms)
      .bind_text(9, p.id);
  if (f.stock) {
    (*stmt)->bind_int64(8, *f.stock);
  } else {
    (*stmt)->bind_null(8);
  }
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error().with_context("update product"));
  p.stock = (*stmt)->column_int64(0);
  (*stmt)->reset();
  if (p.stock != before) {
    HAWKER_TRY_STATUS(record_movement(db, p.id, MovementKind::kAdjustment, p.stock - before,
                                      f.stock_reason.value_or("set by seller"), "", now_ms),
                      "stock adjustment");
    HAWKER_TRY_STATUS(
        append_stock_events(db, p.id, before, p.stock, p.low_stock_threshold, now_ms, events),
        "stock events");
  }
  return p;
}

Status delete_product(storage::Database& db, std::string_view id, int64_t now_ms) {
  auto stmt = db.cached(
      "UPDATE products SET deleted = 1, active = 0, updated_at_ms = ? WHERE id = ? AND deleted = "
      "0");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_int64(1, now_ms).bind_text(2, id);
  HAWKER_TRY_STATUS((*stmt)->run(), "delete product");
  if (db.changes() == 0) return unexpected(ErrorCode::kNotFound, "no such product");
  return ok_status();
}

std::string sniff_image_type(std::string_view b) {
  if (b.size() >= 3 && static_cast<uint8_t>(b[0]) == 0xFF && static_cast<uint8_t>(b[1]) == 0xD8 &&
      static_cast<uint8_t>(b[2]) == 0xFF) {
    return "image/jpeg";
  }
  if (b.size() >= 8 && b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) {
    return "image/png";
  }
  if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") return "image/webp";
  return "";
}

Result<StoredImage> add_product_image(storage::Database& db, std::string_view product_id,
                                      std::string_view content_type, std::string bytes,
                                      int64_t now_ms) {
  auto found = find_product(db, product_id);
  if (!found) return unexpected(std::move(found).error());
  if (!found->has_value()) return unexpected(ErrorCode::kNotFound, "no such product");
  std::string ext = content_type == "image/jpeg"  ? "jpg"
                    : content_type == "image/png" ? "png"
                                                  : "webp";
  StoredImage img;
  img.name = fmt::format("{}-{}.{}", product_id, sha256_hex(bytes).substr(0, 16), ext);
  img.content_type = std::string(content_type);
  img.bytes = std::move(bytes);
  auto stmt = db.cached(
      "INSERT OR IGNORE INTO product_images (name, product_id, content_type, bytes, "
      "created_at_ms) VALUES (?, ?, ?, ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, img.name)
      .bind_text(2, product_id)
      .bind_text(3, img.content_type)
      .bind_blob(4, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(img.bytes.data()),
                                             img.bytes.size()))
      .bind_int64(5, now_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "store image");
  return img;
}

Result<std::optional<StoredImage>> find_image(storage::Database& db, std::string_view name) {
  auto stmt = db.cached("SELECT content_type, bytes FROM product_images WHERE name = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, name);
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone) return std::optional<StoredImage>{};
  StoredImage img;
  img.name = std::string(name);
  img.content_type = std::string((*stmt)->column_text(0));
  auto blob = (*stmt)->column_blob(1);
  img.bytes.assign(reinterpret_cast<const char*>(blob.data()), blob.size());
  return std::optional<StoredImage>{std::move(img)};
}

}  // namespace hawker::commerce

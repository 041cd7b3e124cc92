#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "commerce/events.h"
#include "core/result.h"
#include "storage/migrations.h"
#include "storage/sqlite.h"

namespace hawker::commerce {

inline constexpr int64_t kDefaultLowStockThreshold = 10;

struct Product {
  std::string id;  ///< "prod_..."
  std::string title;
  std::string description;
  int64_t price_minor = 0;
  std::string currency;  ///< ISO 4217, three upper-case letters
  int64_t stock = 0;     ///< available now (reserved and sold units are not in it)
  int64_t low_stock_threshold = kDefaultLowStockThreshold;
  bool active = true;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::vector<std::string> images;  ///< image file names, served under /media/products/
};

/// The seller's view (everything) or the public one (no timestamps of edits).
nlohmann::json to_json(const Product& p);

/// Fields of a create or PATCH body; absent ones are nullopt.
struct ProductFields {
  std::optional<std::string> title;
  std::optional<std::string> description;
  std::optional<int64_t> price_minor;
  std::optional<std::string> currency;
  std::optional<int64_t> stock;
  std::optional<int64_t> low_stock_threshold;
  std::optional<bool> active;
  /// Why the stock was changed by hand (kept on the adjustment movement).
  std::optional<std::string> stock_reason;
};

/// A bad field: the name the client sent and what is wrong with it.
struct FieldError {
  std::string field;
  std::string message;
};

/// Reads and validates a product body. `creating` requires title, price_minor and currency.
/// Unknown members are refused so a typo never passes silently.
std::optional<FieldError> parse_product_fields(const nlohmann::json& body, bool creating,
                                               ProductFields& out);
bool valid_currency(std::string_view code);

/// Kinds of stock movement. `sale` turns a reservation into a sale and moves no stock.
enum class MovementKind { kAdjustment, kReservation, kRelease, kSale, kRestock };
const char* to_string(MovementKind kind);

/// Products, images and stock movements (migration 130).
std::span<const storage::Migration> catalogue_migrations();

/// Inside a write job. Creating with stock N records an adjustment of +N.
Result<Product> create_product(storage::Database& db, const ProductFields& fields, int64_t now_ms,
                               std::vector<Event>& events);
/// Inside a write job: applies the fields; a stock change is an adjustment movement with its
/// reason, and emits the stock events. kNotFound when there is no such product.
Result<Product> update_product(storage::Database& db, std::string_view id,
                               const ProductFields& fields, int64_t now_ms,
                               std::vector<Event>& events);
/// Deleted products leave the catalogue (404, not orderable) but stay for their orders.
Status delete_product(storage::Database& db, std::string_view id, int64_t now_ms);
Result<std::optional<Product>> find_product(storage::Database& db, std::string_view id);
Result<std::vector<Product>> list_products(storage::Database& db);

/// Appends a stock movement row.
Status record_movement(storage::Database& db, std::string_view product_id, MovementKind kind,
                       int64_t delta, std::string_view reason, std::string_view order_id,
                       int64_t now_ms);
/// Sum of the product's movements: equals its stock when every change went through them.
Result<int64_t> movement_sum(storage::Database& db, std::string_view product_id);

/// Emits stock.changed, and stock.low / stock.sold_out when the change crosses them.
Status append_stock_events(storage::Database& db, const std::string& product_id, int64_t before,
                           int64_t after, int64_t threshold, int64_t now_ms,
                           std::vector<Event>& events);

/// Image upload: the type named by the magic bytes ("image/jpeg", "image/png", "image/webp"),
/// or empty when the bytes are none of them.
std::string sniff_image_type(std::string_view bytes);
inline constexpr size_t kMaxImageBytes = 2 * 1024 * 1024;

struct StoredImage {
  std::string name;  ///< "<product>-<sha256 prefix>.<ext>"
  std::string content_type;
  std::string bytes;
};
/// Stores an image for the product (content-addressed name, so it can be cached forever).
Result<StoredImage> add_product_image(storage::Database& db, std::string_view product_id,
                                      std::string_view content_type, std::string bytes,
                                      int64_t now_ms);
Result<std::optional<StoredImage>> find_image(storage::Database& db, std::string_view name);

}  // namespace hawker::commerce

// Feeds arbitrary bytes to the flat order-body reader and, whenever it reads a body itself,
// checks that parsing the tree and judging that gives the same answer: the reader is a faster
// road to the same place, never another place.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "commerce/orders.h"

using namespace hawker::commerce;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  OrderRequest flat;
  std::optional<FieldError> flat_error;
  if (read_flat_order_request(text, flat, flat_error) == FlatRead::kNeedsTree) return 0;
  auto body = nlohmann::json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) std::abort();
  OrderRequest tree;
  std::optional<FieldError> tree_error = parse_order_request(body, tree);
  if (flat_error.has_value() != tree_error.has_value()) std::abort();
  if (flat_error) {
    if (flat_error->field != tree_error->field || flat_error->message != tree_error->message) {
      std::abort();
    }
    return 0;
  }
  if (flat.product_id != tree.product_id || flat.quantity != tree.quantity ||
      flat.email != tree.email || flat.name != tree.name ||
      flat.shipping_address != tree.shipping_address) {
    std::abort();
  }
  return 0;
}

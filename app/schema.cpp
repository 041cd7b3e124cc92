#include "app/schema.h"

#include <filesystem>

#include "commerce/broadcasts.h"
#include "commerce/catalogue.h"
#include "commerce/events.h"
#include "commerce/mail.h"
#include "commerce/orders.h"
#include "commerce/seller_auth.h"
#include "commerce/streamers.h"
#include "commerce/webhooks.h"

namespace hawker::app {

storage::Schema hawker_schema() {
  storage::Schema schema;
  schema.add(commerce::streamer_migrations());
  schema.add(commerce::event_migrations());
  schema.add(commerce::seller_auth_migrations());
  schema.add(commerce::catalogue_migrations());
  schema.add(commerce::order_migrations());
  schema.add(commerce::webhook_migrations());
  schema.add(commerce::broadcast_migrations());
  schema.add(commerce::mail_migrations());
  return schema;
}

storage::StoreOptions hawker_store_options(const Config& config) {
  storage::StoreOptions o;
  o.path = (std::filesystem::path(config.data_dir) / "hawker.db").string();
  o.synchronous =
      storage::parse_synchronous(config.storage_synchronous).value_or(storage::Synchronous::kFull);
  o.max_batch = static_cast<size_t>(config.storage_max_batch);
  o.checkpoint_pages = static_cast<int>(config.storage_checkpoint_pages);
  o.schema = hawker_schema();
  return o;
}

}  // namespace hawker::app

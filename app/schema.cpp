#include "app/schema.h"

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

}  // namespace hawker::app

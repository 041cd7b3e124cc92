#include "app/schema.h"

#include "commerce/events.h"
#include "commerce/streamers.h"

namespace hawker::app {

storage::Schema hawker_schema() {
  storage::Schema schema;
  schema.add(commerce::streamer_migrations());
  schema.add(commerce::event_migrations());
  return schema;
}

}  // namespace hawker::app

#pragma once

#include <memory>
#include <string>

#include "app/config.h"
#include "app/ingest.h"
#include "commerce/broadcasts.h"
#include "commerce/events.h"
#include "commerce/mail.h"
#include "core/clock.h"
#include "storage/store.h"

namespace hawker::app {

/// How streamers' email leaves: smtp.* keys, .eml files under DATA_DIR/mail without smtp.url.
commerce::SmtpSettings smtp_settings(const Config& config);
commerce::MailSenderOptions mail_sender_options(const Config& config);
/// broadcasts.* keys.
commerce::GoLiveRule go_live_rule(const Config& config);

/// Joins ingest (media) and broadcasts (commerce), which never include each other: a key that
/// publishes makes its streamer's broadcast live, the end of the stream ends it, and with key
/// windows on a publish outside every window is refused. Events go to the outbox (webhooks) and,
/// after the commit, to the bus (viewers' SSE). Loop thread only.
class BroadcastLink final : public IngestObserver {
 public:
  BroadcastLink(storage::Store& store, commerce::EventBus& bus, const Clock& clock,
                commerce::GoLiveRule rule);
  ~BroadcastLink() override;

  /// Ends broadcasts left live by a previous run: no stream survives a restart.
  void start();

  void admit(const commerce::Streamer& streamer, AdmitDone done) override;
  void channel_live(const std::string& channel, int64_t streamer_id) override;
  void channel_ended(const std::string& channel) override;

 private:
  storage::Store& store_;
  commerce::EventBus& bus_;
  const Clock& clock_;
  commerce::GoLiveRule rule_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hawker::app

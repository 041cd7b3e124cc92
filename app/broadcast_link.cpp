#include "app/broadcast_link.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/log.h"

namespace hawker::app {
namespace {

constexpr const char* kLog = "broadcasts";

struct Changed {
  std::vector<commerce::Broadcast> broadcasts;
  std::vector<commerce::Event> events;
};

}  // namespace

commerce::SmtpSettings smtp_settings(const Config& config) {
  commerce::SmtpSettings smtp;
  smtp.url = config.smtp_url;
  smtp.from = config.smtp_from;
  smtp.user = config.smtp_user;
  smtp.password = Secret(config.smtp_password);
  smtp.require_tls = config.smtp_starttls == "required";
  smtp.mail_dir = (std::filesystem::path(config.data_dir) / "mail").string();
  return smtp;
}

commerce::MailSenderOptions mail_sender_options(const Config& config) {
  commerce::MailSenderOptions mo;
  mo.retry_initial_ms = config.smtp_retry_initial_ms;
  mo.retry_max_ms = std::max(config.smtp_retry_max_ms, config.smtp_retry_initial_ms);
  mo.poll_ms = std::min<int64_t>(5'000, mo.retry_initial_ms);
  return mo;
}

commerce::GoLiveRule go_live_rule(const Config& config) {
  commerce::GoLiveRule rule;
  rule.early_ms = config.broadcasts_early_ms;
  rule.late_ms = config.broadcasts_late_ms;
  rule.allow_unscheduled = config.broadcasts_allow_unscheduled == "true";
  rule.key_window = config.broadcasts_key_window == "true";
  return rule;
}

BroadcastLink::BroadcastLink(storage::Store& store, commerce::EventBus& bus, const Clock& clock,
                             commerce::GoLiveRule rule)
    : store_(store), bus_(bus), clock_(clock), rule_(rule) {}

BroadcastLink::~BroadcastLink() { *alive_ = false; }

void BroadcastLink::start() {
  int64_t now = clock_.wall_ms();
  store_.write<Changed>(
      [now](storage::Database& db) -> Result<Changed> {
        Changed out;
        auto current = commerce::current_broadcasts(db, now);
        if (!current) return unexpected(std::move(current).error());
        std::set<std::string> channels;
        for (const auto& b : *current) {
          if (b.status == commerce::BroadcastStatus::kLive) channels.insert(b.channel);
        }
        for (const auto& channel : channels) {
          auto ended = commerce::end_live(db, channel, now, out.events);
          if (!ended) return unexpected(std::move(ended).error());
          out.broadcasts.insert(out.broadcasts.end(), ended->begin(), ended->end());
        }
        return out;
      },
      [this, alive = alive_](Result<Changed> changed) {
        if (!*alive) return;
        if (!changed) {
          log::error(kLog, "ending broadcasts left live failed: {}", changed.error().message);
          return;
        }
        for (const auto& b : changed->broadcasts) {
          log::info(kLog, "broadcast={} channel={} ended: left live by the previous run", b.id,
                    b.channel);
        }
        bus_.publish(changed->events);
      });
}

void BroadcastLink::admit(const commerce::Streamer& streamer, AdmitDone done) {
  if (!rule_.key_window) {
    done(std::nullopt);
    return;
  }
  int64_t streamer_id = streamer.id;
  int64_t now = clock_.wall_ms();
  auto rule = rule_;
  store_.read<std::optional<std::string>>(
      [streamer_id, now, rule](storage::Database& db) -> Result<std::optional<std::string>> {
        auto open = commerce::open_broadcasts_of(db, streamer_id);
        if (!open) return unexpected(std::move(open).error());
        return commerce::key_window_refusal(*open, now, rule);
      },
      [alive = alive_, done = std::move(done)](Result<std::optional<std::string>> refusal) {
        if (!*alive) return;
        if (!refusal) {
          log::error(kLog, "checking the broadcast window failed: {}", refusal.error().message);
          done(std::string("the server could not check the broadcast schedule; try again"));
          return;
        }
        done(*refusal);
      });
}

void BroadcastLink::channel_live(const std::string& channel, int64_t streamer_id) {
  int64_t now = clock_.wall_ms();
  auto rule = rule_;
  store_.write<Changed>(
      [channel, streamer_id, now, rule](storage::Database& db) -> Result<Changed> {
        Changed out;
        auto streamer = commerce::find_streamer_by_channel(db, channel);
        if (!streamer) return unexpected(std::move(streamer).error());
        if (!streamer->has_value() || (*streamer)->id != streamer_id) return out;
        auto live = commerce::go_live(db, **streamer, now, rule, out.events);
        if (!live) return unexpected(std::move(live).error());
        if (live->has_value()) out.broadcasts.push_back(std::move(**live));
        return out;
      },
      [this, alive = alive_, channel](Result<Changed> changed) {
        if (!*alive) return;
        if (!changed) {
          log::error(kLog, "channel={} going live failed: {}", channel, changed.error().message);
          return;
        }
        if (changed->broadcasts.empty()) {
          log::info(kLog, "channel={} is live with no broadcast (nothing scheduled)", channel);
        } else if (!changed->events.empty()) {
          const auto& b = changed->broadcasts.front();
          log::info(kLog, "broadcast={} channel={} is live{}", b.id, channel,
                    b.unscheduled ? " (unscheduled)" : "");
        }
        bus_.publish(changed->events);
      });
}

void BroadcastLink::channel_ended(const std::string& channel) {
  int64_t now = clock_.wall_ms();
  store_.write<Changed>(
      [channel, now](storage::Database& db) -> Result<Changed> {
        Changed out;
        auto ended = commerce::end_live(db, channel, now, out.events);
        if (!ended) return unexpected(std::move(ended).error());
        out.broadcasts = std::move(*ended);
        return out;
      },
      [this, alive = alive_, channel](Result<Changed> changed) {
        if (!*alive) return;
        if (!changed) {
          log::error(kLog, "channel={} ending its broadcast failed: {}", channel,
                     changed.error().message);
          return;
        }
        for (const auto& b : changed->broadcasts) {
          log::info(kLog, "broadcast={} channel={} ended", b.id, channel);
        }
        bus_.publish(changed->events);
      });
}

}  // namespace hawker::app

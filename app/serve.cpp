#include "app/serve.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

extern "C" {
#include <libavutil/log.h>
}

#include "app/broadcast_link.h"
#include "app/ingest.h"
#include "app/schema.h"
#include "commerce/broadcasts_api.h"
#include "commerce/events.h"
#include "commerce/mail.h"
#include "commerce/outbound.h"
#include "commerce/payments.h"
#include "commerce/seller_auth.h"
#include "commerce/shop_api.h"
#include "commerce/sse_hub.h"
#include "commerce/webhooks_api.h"
#include "commerce/webhooks_dispatcher.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "http/router.h"
#include "http/server.h"
#include "http/static_files.h"
#include "media/hls/service.h"
#include "media/rtmp/server.h"
#include "media/workers.h"
#include "storage/store.h"

namespace hawker::app {
namespace {

constexpr const char* kLog = "app";

std::vector<std::string> split_origins(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string item =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

media::rtmp::RtmpLimits rtmp_limits(const Config& c) {
  media::rtmp::RtmpLimits limits;
  limits.handshake_timeout_ms = static_cast<uint64_t>(c.rtmp_handshake_timeout_ms);
  limits.idle_timeout_ms = static_cast<uint64_t>(c.rtmp_idle_timeout_ms);
  limits.max_connections = static_cast<size_t>(c.rtmp_max_connections);
  return limits;
}

http::ServerLimits http_limits(const Config& c) {
  http::ServerLimits limits;
  limits.max_header_bytes = static_cast<size_t>(c.http_max_header_bytes);
  limits.max_body_bytes = static_cast<size_t>(c.http_max_body_bytes);
  limits.header_timeout_ms = static_cast<uint64_t>(c.http_header_timeout_ms);
  limits.body_timeout_ms = static_cast<uint64_t>(c.http_body_timeout_ms);
  limits.idle_timeout_ms = static_cast<uint64_t>(c.http_idle_timeout_ms);
  limits.max_connections = static_cast<size_t>(c.http_max_connections);
  return limits;
}

/// The store's options with its timings going to /metrics: batches and checkpoints take from
/// a fraction of a millisecond to tens of milliseconds, and every order waits for one.
storage::StoreOptions store_options(const Config& config, Metrics& metrics) {
  static const std::vector<double> buckets = {0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                              0.025,   0.05,   0.1,   0.25,   0.5,   1.0};
  storage::StoreOptions o = hawker_store_options(config);
  auto timing = [&](const std::string& name, const std::string& help) {
    return &metrics.histogram(name, help, {}, buckets).with({});
  };
  o.batch_seconds = timing("hawker_storage_batch_seconds",
                           "Time the storage writer spent on one batch: its jobs, COMMIT with its "
                           "sync, handing the answers to the loop");
  o.checkpoint_seconds =
      timing("hawker_storage_checkpoint_seconds",
             "Time the storage writer spent finishing one WAL checkpoint between batches");
  o.background_checkpoint_seconds =
      timing("hawker_storage_background_checkpoint_seconds",
             "Time one checkpointer round took to copy the WAL into the data file, while the "
             "writer went on committing");
  return o;
}

/// The running server: every module, owned in the order they must be torn down.
class Application {
 public:
  explicit Application(const Config& config)
      : config_(config),
        store_(loop_, store_options(config, metrics_)),
        hls_(loop_, workers_, metrics_, hls_options(config)),
        http_(loop_, router_, http_limits(config), metrics_, cors_policy(config)),
        ingest_(loop_, store_, metrics_,
                IngestOptions{.reconnect_grace_ms = config.rtmp_reconnect_grace_ms}),
        rtmp_(loop_, ingest_, rtmp_limits(config)),
        seller_auth_(store_, SystemClock::instance(), seller_auth_options(config)),
        start_wall_ms_(SystemClock::instance().wall_ms()) {}

  int run() {
    if (auto s = prepare_data_dir(); !s) return fail(s.error());
    if (auto s = store_.open(); !s) return fail(std::move(s).error().with_context("open storage"));
    if (auto s = start_shop(); !s) return fail(s.error());
    if (auto s = start_events(); !s) return fail(s.error());
    if (auto s = start_broadcasts(); !s) return fail(s.error());
    if (auto s = add_routes(); !s) return fail(s.error());

    auto http_port = http_.listen(config_.http_listen.host, config_.http_listen.port);
    if (!http_port) {
      return fail(std::move(http_port).error().with_context(
          fmt::format("listen on {} (http.listen)", config_.http_listen.to_string())));
    }
    http_address_ = app::HostPort{config_.http_listen.host, *http_port}.to_string();
    ingest_.set_sink(&hls_);
    ingest_.set_observer(broadcast_link_.get());
    ingest_.attach(rtmp_);
    auto rtmp_port = rtmp_.listen(config_.rtmp_listen.host, config_.rtmp_listen.port);
    if (!rtmp_port) {
      return fail(std::move(rtmp_port).error().with_context(
          fmt::format("listen on {} (rtmp.listen)", config_.rtmp_listen.to_string())));
    }
    rtmp_address_ = app::HostPort{config_.rtmp_listen.host, *rtmp_port}.to_string();
    install_signal_handlers();
    if (auto s = write_ready_file(); !s) return fail(s.error());

    log::info(kLog, "hawker {} serving HTTP on {} (open {}/) and RTMP on {}, data in {}",
              HAWKER_VERSION, http_address_, public_url(), rtmp_address_, config_.data_dir);
    loop_.run();

    std::error_code ec;
    std::filesystem::remove(ready_path(), ec);
    log::info(kLog, "stopped cleanly");
    return 0;
  }

 private:
  static commerce::SellerAuthOptions seller_auth_options(const Config& c) {
    commerce::SellerAuthOptions o;
    o.secure_cookies =
        c.http_secure_cookies == "true" || c.effective_public_url().rfind("https://", 0) == 0;
    return o;
  }

  /// What the shop's events feed: signed webhooks to the seller's endpoints (pending deliveries
  /// from before a restart go out at once) and live streams for viewers.
  /// Broadcasts: the admin and public API, the link that makes a show live when its key
  /// publishes, and the mail outbox that sends streamers their keys.
  Status start_broadcasts() {
    commerce::SmtpSettings smtp = smtp_settings(config_);
    if (smtp.url.empty()) {
      log::info(kLog, "no smtp.url: streamers' emails are written to {}", smtp.mail_dir);
    }
    mail_ = std::make_unique<commerce::MailSender>(store_, std::move(smtp),
                                                   mail_sender_options(config_));
    commerce::BroadcastApiOptions bo;
    bo.public_url = [this] { return public_url(); };
    bo.rtmp_url = [this] { return rtmp_url(); };
    bo.mail_from = config_.smtp_from;
    bo.mail_queued = [this] { mail_->wake(); };
    broadcast_api_ = std::make_unique<commerce::BroadcastApi>(store_, seller_auth_, event_bus_,
                                                              SystemClock::instance(), bo);
    HAWKER_TRY_STATUS(broadcast_api_->add_routes(router_), "broadcast routes");
    broadcast_link_ = std::make_unique<BroadcastLink>(store_, event_bus_, SystemClock::instance(),
                                                      go_live_rule(config_));
    broadcast_link_->start();
    mail_->start();
    return ok_status();
  }

  /// The RTMP URL streamers put in OBS, with the port actually bound.
  std::string rtmp_url() const {
    if (!config_.rtmp_public_url.empty() || rtmp_address_.empty()) {
      return config_.effective_rtmp_url();
    }
    Config c = config_;
    c.rtmp_listen.port = std::stoi(rtmp_address_.substr(rtmp_address_.rfind(':') + 1));
    if (!config_.public_url.empty()) return c.effective_rtmp_url();
    c.http_listen.port = std::stoi(http_address_.substr(http_address_.rfind(':') + 1));
    return c.effective_rtmp_url();
  }

  Status start_events() {
    auto schedule = parse_retry_schedule(config_.webhooks_retry_schedule);
    if (!schedule) return std::move(schedule).error().with_context("webhooks.retry-schedule");
    bool allow_private = config_.webhooks_allow_private == "true";
    if (allow_private) {
      log::warn(kLog, "webhooks.allow-private is true: webhooks may reach private addresses");
    }
    outbound_ = std::make_unique<commerce::OutboundClient>(
        loop_, commerce::OutboundOptions{.allow_private = allow_private});
    HAWKER_TRY_STATUS(outbound_->start(), "outbound HTTP client");
    commerce::WebhookDispatcherOptions wo;
    wo.retry_schedule_ms = std::move(*schedule);
    wo.poll_interval_ms = config_.webhooks_poll_interval_ms;
    webhooks_ = std::make_unique<commerce::WebhookDispatcher>(
        store_, event_bus_, *outbound_, loop_, SystemClock::instance(), metrics_, wo);
    webhook_api_ = std::make_unique<commerce::WebhookAdminApi>(
        store_, seller_auth_, webhooks_.get(), SystemClock::instance(), allow_private);
    HAWKER_TRY_STATUS(webhook_api_->add_routes(router_), "webhook routes");
    sse_ = std::make_unique<commerce::SseHub>(
        loop_, store_, event_bus_, SystemClock::instance(), metrics_,
        commerce::SseHubOptions{.coalesce_ms = config_.sse_coalesce_ms,
                                .keepalive_ms = config_.sse_keepalive_ms});
    HAWKER_TRY_STATUS(sse_->add_routes(router_), "viewer event routes");
    webhooks_->start();
    sse_->start();
    return ok_status();
  }

  /// The shop: payment provider, catalogue and order API, and the expiry of unpaid
  /// reservations (overdue ones expire now, also those that ran out while hawker was down).
  Status start_shop() {
    std::unique_ptr<commerce::PaymentProvider> provider;
    if (config_.payments_provider == "hosted") {
      if (config_.payments_hosted_checkout_url.empty() || config_.payments_hosted_secret.empty()) {
        return unexpected(ErrorCode::kInvalidArgument,
                          "payments.provider = hosted needs payments.hosted-checkout-url and "
                          "payments.hosted-secret");
      }
      provider = std::make_unique<commerce::HostedPaymentProvider>(
          config_.payments_hosted_checkout_url, Secret(config_.payments_hosted_secret),
          config_.effective_public_url());
    } else {
      provider = std::make_unique<commerce::TestPaymentProvider>(config_.effective_public_url());
    }
    commerce::ShopOptions options;
    options.payment_window_ms = config_.orders_payment_window_ms;
    options.default_low_stock_threshold = config_.orders_low_stock_threshold;
    shop_ =
        std::make_unique<commerce::ShopApi>(loop_, store_, seller_auth_, event_bus_, metrics_,
                                            SystemClock::instance(), std::move(provider), options);
    HAWKER_TRY_STATUS(seller_auth_.add_routes(router_), "admin auth routes");
    HAWKER_TRY_STATUS(shop_->add_routes(router_), "shop routes");
    shop_->start();
    return ok_status();
  }

  static media::hls::HlsServiceOptions hls_options(const Config& c) {
    media::hls::HlsServiceOptions o;
    auto packager = [](const HlsTargets& t) {
      media::hls::PackagerOptions p;
      p.part_target_ms = t.part_target_ms;
      p.segment_target_ms = t.segment_target_ms;
      p.max_segment_ms = t.max_segment_ms;
      return p;
    };
    o.packager = packager(c.hls_targets(""));
    o.transcode = c.transcode_enabled == "true";
    // Ladders were validated when the configuration was loaded.
    auto rungs = [](const std::string& text) {
      std::vector<media::transcode::RungConfig> out;
      if (auto ladder = parse_transcode_ladder(text)) {
        for (const LadderRungSetting& rung : *ladder) {
          out.push_back({rung.height, rung.bitrate_kbps * 1000, rung.max_fps});
        }
      }
      return out;
    };
    o.ladder.rungs = rungs(c.transcode_ladder);
    bool any_rungs = !o.ladder.rungs.empty();
    for (const auto& [channel, text] : c.channel_ladders) {
      o.channel_rungs[channel] = rungs(text);
      any_rungs = any_rungs || !o.channel_rungs[channel].empty();
    }
    o.transcode = o.transcode && any_rungs;
    o.ladder.realtime_budget = static_cast<double>(c.transcode_realtime_budget) / 100.0;
    o.ladder_retry_ms = c.transcode_retry_after_ms;
    for (const auto& [channel, targets] : c.hls_channels) {
      o.channel_packager[channel] = packager(c.hls_targets(channel));
    }
    return o;
  }

  static http::CorsPolicy cors_policy(const Config& c) {
    http::CorsPolicy cors;
    cors.allowed_origins = split_origins(c.http_cors_origins);
    return cors;
  }

  int fail(const Error& e) {
    log::error(kLog, "cannot start: {}", e.message);
    shutdown_now();
    return 1;
  }

  std::string public_url() const {
    if (!config_.public_url.empty()) return config_.public_url;
    Config c = config_;
    c.http_listen.port = std::stoi(http_address_.substr(http_address_.rfind(':') + 1));
    return c.effective_public_url();
  }

  std::filesystem::path ready_path() const {
    return std::filesystem::path(config_.data_dir) / "hawker.ready.json";
  }

  Status prepare_data_dir() {
    std::error_code ec;
    std::filesystem::create_directories(config_.data_dir, ec);
    if (ec) {
      return unexpected(ErrorCode::kIo, fmt::format("create data dir {} (data-dir): {}",
                                                    config_.data_dir, ec.message()));
    }
    return ok_status();
  }

  /// Written after every listener is bound, so whoever waits for it can connect at once.
  Status write_ready_file() {
    nlohmann::json ready = {{"pid", ::getpid()},
                            {"http", http_address_},
                            {"rtmp", rtmp_address_},
                            {"version", HAWKER_VERSION}};
    auto tmp = ready_path();
    tmp += ".tmp";
    {
      std::ofstream out(tmp);
      out << ready.dump() << "\n";
      if (!out) return unexpected(ErrorCode::kIo, fmt::format("write {}", tmp.string()));
    }
    std::error_code ec;
    std::filesystem::rename(tmp, ready_path(), ec);
    if (ec)
      return unexpected(ErrorCode::kIo,
                        fmt::format("write {}: {}", ready_path().string(), ec.message()));
    return ok_status();
  }

  Status add_routes() {
    HAWKER_TRY_STATUS(
        router_.add("GET", "/healthz",
                    [this](const http::Request&, http::ExchangePtr ex) { healthz(ex); }),
        "route /healthz");
    HAWKER_TRY_STATUS(router_.add("GET", "/metrics",
                                  [this](const http::Request&, http::ExchangePtr ex) {
                                    ex->respond(render_metrics());
                                  }),
                      "route /metrics");
    HAWKER_TRY_STATUS(router_.add("GET", "/api/streams",
                                  [this](const http::Request& req, http::ExchangePtr ex) {
                                    seller_auth_.require(req, ex, [this, ex](const auto&) {
                                      ex->respond(streams());
                                    });
                                  }),
                      "route /api/streams");
    // Before the static catch-all, which would otherwise answer /live/... with 404.
    HAWKER_TRY_STATUS(hls_.add_routes(router_), "routes /live");
    HAWKER_TRY_STATUS(add_page_routes(), "page routes");
    HAWKER_TRY_STATUS(router_.add("GET", "/{path*}", http::static_handler()), "route static");
    return ok_status();
  }

  /// Pretty URLs of the embedded pages: each serves one page whatever follows, and the page's
  /// script reads the rest of the path (channel, order token, dashboard section).
  Status add_page_routes() {
    const std::pair<const char*, const char*> pages[] = {
        {"/watch/{channel}", "watch.html"},
        {"/orders/{token}", "order.html"},
        {"/admin", "admin.html"},
        {"/admin/{rest*}", "admin.html"},
    };
    for (const auto& [pattern, page] : pages) {
      // The route has no "page" parameter, so the handler sees "/" and serves its index.
      http::StaticOptions options{.param = "page", .index = page};
      HAWKER_TRY_STATUS(router_.add("GET", pattern, http::static_handler(options)),
                        fmt::format("route {}", pattern));
    }
    HAWKER_TRY_STATUS(router_.add("GET", "/api/admin/settings",
                                  [this](const http::Request& req, http::ExchangePtr ex) {
                                    seller_auth_.require(
                                        req, ex,
                                        [this, ex](const auto&) { ex->respond(settings()); },
                                        commerce::kRoleSupport);
                                  }),
                      "route /api/admin/settings");
    return ok_status();
  }

  /// The effective values of the settings the dashboard shows. Read-only: they come from the
  /// config file, HAWKER_* variables and flags, and change with a restart.
  http::Response settings() {
    auto targets = [](const HlsTargets& t) {
      return nlohmann::json{{"part_target_ms", t.part_target_ms},
                            {"segment_target_ms", t.segment_target_ms},
                            {"max_segment_ms", t.max_segment_ms}};
    };
    nlohmann::json channels = nlohmann::json::object();
    for (const auto& [channel, _] : config_.hls_channels) {
      channels[channel] = targets(config_.hls_targets(channel));
    }
    nlohmann::json hls = targets(config_.hls_targets(""));
    hls["channels"] = std::move(channels);
    auto r =
        http::Response::json(200, {{"orders",
                                    {{"payment_window_ms", config_.orders_payment_window_ms},
                                     {"low_stock_threshold", config_.orders_low_stock_threshold}}},
                                   {"payments", {{"provider", config_.payments_provider}}},
                                   {"hls", std::move(hls)},
                                   {"public_url", public_url()},
                                   {"read_only", true}});
    r.headers.set("Cache-Control", "no-store");
    return r;
  }

  /// Healthy means serving and able to read the database; a read goes through the reader
  /// threads, so a wedged storage layer shows here. /healthz needs no credentials, so its cost
  /// must not grow with its rate, and a probe must not wait behind a busy reader queue: one
  /// storage read runs at a time (single-flight); an answer younger than kHealthFreshMs is
  /// reused; an older one, up to kHealthStaleMs, is reused while a new read runs in the
  /// background; past that (or at the first check) the request waits for the read. A flood
  /// costs the reader threads one read a second, and a storage layer that cannot answer a read
  /// for kHealthStaleMs makes every check wait, then 503 if the read fails.
  void healthz(const http::ExchangePtr& ex) {
    if (stopping_) {
      ex->respond(http::Response::json(503, {{"status", "stopping"}}));
      return;
    }
    HealthCheck& h = *health_;
    int64_t age = SystemClock::instance().steady_ms() - h.answered_ms;
    if (h.answer && age < kHealthStaleMs) {
      ex->respond(http::Response::shared_text(h.status, h.answer, "application/json"));
      if (age >= kHealthFreshMs) start_health_read();
      return;
    }
    h.waiters.push_back(ex);
    start_health_read();
  }

  void start_health_read() {
    if (health_->reading) return;
    health_->reading = true;
    // The callback holds the check, not the Application: it may run from the Store's close.
    store_.read<int64_t>(
        [](storage::Database& db) -> Result<int64_t> {
          auto stmt = db.prepare("SELECT count(*) FROM schema_migrations");
          if (!stmt) return unexpected(std::move(stmt).error());
          auto step = stmt->step();
          if (!step) return unexpected(std::move(step).error());
          return stmt->column_int64(0);
        },
        [health = health_, start_ms = start_wall_ms_](Result<int64_t> migrations) {
          int64_t uptime_s = (SystemClock::instance().wall_ms() - start_ms) / 1000;
          nlohmann::json body = {{"status", migrations ? "ok" : "degraded"},
                                 {"version", HAWKER_VERSION},
                                 {"uptime_seconds", uptime_s}};
          body["storage"] =
              migrations
                  ? nlohmann::json{{"status", "ok"}, {"migrations", *migrations}}
                  : nlohmann::json{{"status", "error"}, {"error", migrations.error().message}};
          health->answer = std::make_shared<const std::string>(
              body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
          health->status = migrations ? 200 : 503;
          health->answered_ms = SystemClock::instance().steady_ms();
          health->reading = false;
          std::vector<http::ExchangePtr> waiters;
          waiters.swap(health->waiters);
          for (const auto& w : waiters) {
            w->respond(
                http::Response::shared_text(health->status, health->answer, "application/json"));
          }
        });
  }

  /// Live streams with their codec facts and measured rates; admin only (it tells who
  /// publishes from where).
  http::Response streams() {
    nlohmann::json list = nlohmann::json::array();
    for (const auto* s : ingest_.registry().streams()) {
      nlohmann::json j = media::to_json(*s);
      j["playback_url"] = fmt::format("{}/live/{}/index.m3u8", public_url(), s->channel);
      // Rungs this machine could not encode in real time: viewers do not get them for now.
      j["renditions_dropped"] = hls_.dropped_renditions(s->channel);
      list.push_back(std::move(j));
    }
    auto r = http::Response::json(200, {{"streams", list}});
    r.headers.set("Cache-Control", "no-store");
    return r;
  }

  http::Response render_metrics() {
    ingest_.collect_metrics();
    hls_.collect_metrics();
    collect_process_metrics(metrics_);
    storage::StoreCounters sc = store_.counters();
    metrics_.counter("hawker_storage_commits_total", "Transactions committed by the storage thread")
        .with({})
        .set_total(static_cast<double>(sc.commits));
    metrics_.counter("hawker_storage_jobs_total", "Write jobs committed")
        .with({})
        .set_total(static_cast<double>(sc.jobs_committed));
    metrics_
        .counter("hawker_storage_jobs_failed_total",
                 "Write jobs that failed or lost their transaction")
        .with({})
        .set_total(static_cast<double>(sc.jobs_failed));
    metrics_.gauge("hawker_storage_queue_depth", "Jobs waiting for the storage threads", {"queue"})
        .with({"write"})
        .set(static_cast<double>(sc.write_queue_depth));
    metrics_.gauge("hawker_storage_queue_depth", "Jobs waiting for the storage threads", {"queue"})
        .with({"read"})
        .set(static_cast<double>(sc.read_queue_depth));
    metrics_
        .counter("hawker_storage_group_runs_total",
                 "Runs of grouped write jobs (orders) run together in one go")
        .with({})
        .set_total(static_cast<double>(sc.group_runs));
    metrics_.counter("hawker_storage_group_jobs_total", "Write jobs run as part of a group run")
        .with({})
        .set_total(static_cast<double>(sc.jobs_in_group_runs));
    metrics_
        .counter("hawker_storage_group_fallbacks_total",
                 "Group runs that failed and were run job by job instead")
        .with({})
        .set_total(static_cast<double>(sc.group_fallbacks));
    metrics_
        .counter("hawker_storage_checkpoints_total",
                 "WAL checkpoints the writer finished between batches, after answering")
        .with({})
        .set_total(static_cast<double>(sc.checkpoints));
    double mean_batch =
        sc.commits == 0 ? 0.0
                        : static_cast<double>(sc.batch_size_sum) / static_cast<double>(sc.commits);
    metrics_.gauge("hawker_storage_mean_batch_size", "Mean write jobs per commit since start")
        .with({})
        .set(mean_batch);
    http::Response r =
        http::Response::text(200, metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
    r.headers.set("Cache-Control", "no-store");
    return r;
  }

  void install_signal_handlers() {
    for (int signum : {SIGINT, SIGTERM}) {
      auto* handle = new uv_signal_t;
      uv_signal_init(loop_.uv(), handle);
      handle->data = this;
      uv_signal_start(
          handle,
          [](uv_signal_t* h, int sig) { static_cast<Application*>(h->data)->on_signal(sig); },
          signum);
      signals_.emplace_back(handle);
    }
  }

  void on_signal(int signum) {
    if (stopping_) {
      log::warn(kLog, "second signal ({}): exiting at once", signum);
      ::_exit(1);
    }
    stopping_ = true;
    log::info(kLog, "signal {}: stopping (deadline {} ms)", signum, config_.shutdown_deadline_ms);
    rtmp_.shutdown();
    // Held playlist requests are answered now, so they do not hold the HTTP drain; the media
    // workers finish what is queued and are joined.
    hls_.shutdown();
    http_.shutdown(static_cast<uint64_t>(config_.shutdown_deadline_ms), [this] { shutdown_now(); });
  }

  /// Stops what is left once the listeners have drained: storage commits its queue, then every
  /// handle closes so the loop ends.
  void shutdown_now() {
    if (shop_) shop_->stop();
    if (sse_) sse_->stop();
    if (webhooks_) webhooks_->stop();
    if (outbound_) outbound_->stop();
    // The mail thread uses the store: stopped before it closes.
    if (mail_) mail_->stop();
    store_.close();
    for (auto& s : signals_) uv_signal_stop(s.get());
    signals_.clear();
    loop_.stop();
  }

  Config config_;
  Loop loop_;
  Metrics metrics_;
  storage::Store store_;
  media::MediaWorkers workers_;
  media::hls::HlsService hls_;
  http::Router router_;
  http::Server http_;
  Ingest ingest_;
  media::rtmp::RtmpServer rtmp_;
  commerce::EventBus event_bus_;
  commerce::SellerAuth seller_auth_;
  std::unique_ptr<commerce::ShopApi> shop_;
  std::unique_ptr<commerce::OutboundClient> outbound_;
  std::unique_ptr<commerce::WebhookDispatcher> webhooks_;
  std::unique_ptr<commerce::WebhookAdminApi> webhook_api_;
  std::unique_ptr<commerce::SseHub> sse_;
  std::unique_ptr<commerce::MailSender> mail_;
  std::unique_ptr<commerce::BroadcastApi> broadcast_api_;
  std::unique_ptr<BroadcastLink> broadcast_link_;
  std::vector<UvPtr<uv_signal_t>> signals_;
  std::string http_address_;
  std::string rtmp_address_;
  int64_t start_wall_ms_;
  bool stopping_ = false;
  /// The last storage check /healthz made and the requests waiting for the one in flight.
  struct HealthCheck {
    http::SharedText answer;
    int status = 200;
    int64_t answered_ms = 0;
    bool reading = false;
    std::vector<http::ExchangePtr> waiters;
  };
  static constexpr int64_t kHealthFreshMs = 1000;
  static constexpr int64_t kHealthStaleMs = 10'000;
  std::shared_ptr<HealthCheck> health_ = std::make_shared<HealthCheck>();
};

}  // namespace

int serve(const Config& config) {
  // libx264 and the H.264 decoder print banners and per-stream notes at info level.
  av_log_set_level(AV_LOG_ERROR);
  Application app(config);
  return app.run();
}

}  // namespace hawker::app

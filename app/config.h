#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace hawker::app {

struct HostPort {
  std::string host;
  int port = 0;
  std::string to_string() const;
};

/// Parses "HOST:PORT", "[v6]:PORT" or ":PORT" (all interfaces).
Result<HostPort> parse_host_port(std::string_view text);
/// Parses a duration: "250ms", "2s", "10m", "1h", or a bare number of milliseconds.
Result<int64_t> parse_duration_ms(std::string_view text);
/// Parses a size: "64KiB", "1MiB", "512" (bytes).
Result<int64_t> parse_size_bytes(std::string_view text);

/// One rung of `transcode.ladder`: "HEIGHT:KBPS:FPS".
struct LadderRungSetting {
  int height = 0;
  int64_t bitrate_kbps = 0;
  int max_fps = 0;
};
/// Parses "720:3000:30,480:1400:30,360:800:30" (heights 144-2160, 100-50000 kb/s, 1-120 fps,
/// highest first, no repeated height); an empty list means no transcoded renditions.
Result<std::vector<LadderRungSetting>> parse_transcode_ladder(std::string_view text);

/// LL-HLS part and segment targets (see docs/llhls.md). In Config::hls_channels, 0 means the
/// server's value.
struct HlsTargets {
  int64_t part_target_ms = 0;
  int64_t segment_target_ms = 0;
  int64_t max_segment_ms = 0;
};

/// The effective configuration. Defaults are the embedded ones `scripts/run` starts with.
struct Config {
  std::string data_dir = "./hawker-data";
  HostPort http_listen{"0.0.0.0", 8080};
  HostPort rtmp_listen{"0.0.0.0", 1935};
  /// Base URL viewers reach hawker at; empty means derived from http.listen.
  std::string public_url;
  /// RTMP URL streamers publish to (without the key); empty means derived from public.url's
  /// host and rtmp.listen's port.
  std::string rtmp_public_url;
  std::string log_level = "info";
  std::string log_format = "text";

  // HTTP limits.
  int64_t http_max_header_bytes = 16 * 1024;
  int64_t http_max_body_bytes = 1024 * 1024;
  int64_t http_header_timeout_ms = 10'000;
  int64_t http_body_timeout_ms = 30'000;
  int64_t http_idle_timeout_ms = 60'000;
  int64_t http_max_connections = 10'000;
  std::string http_cors_origins = "*";

  // RTMP ingest.
  int64_t rtmp_reconnect_grace_ms = 15'000;
  int64_t rtmp_handshake_timeout_ms = 10'000;
  int64_t rtmp_idle_timeout_ms = 30'000;
  int64_t rtmp_max_connections = 64;

  // Storage.
  std::string storage_synchronous = "full";
  /// Most writes per transaction; 1 turns group commit off (for the orders benchmark).
  int64_t storage_max_batch = 1024;
  /// WAL size after which the writer checkpoints between batches; 0: inside the commit.
  int64_t storage_checkpoint_pages = 1000;

  // Shop.
  int64_t orders_payment_window_ms = 10 * 60 * 1000;
  int64_t orders_low_stock_threshold = 10;
  std::string payments_provider = "test";
  std::string payments_hosted_checkout_url;
  std::string payments_hosted_secret;
  /// Marks the dashboard session cookie Secure (also implied by an https public.url).
  std::string http_secure_cookies = "false";

  // Webhooks and viewer events.
  /// Lets webhooks reach loopback and private addresses (tests, a receiver on the LAN).
  std::string webhooks_allow_private = "false";
  /// Waits before each delivery attempt, comma-separated durations.
  std::string webhooks_retry_schedule = "0,5s,5m,30m,2h,5h,10h,14h,20h,24h";
  int64_t webhooks_poll_interval_ms = 5'000;
  int64_t sse_coalesce_ms = 250;
  int64_t sse_keepalive_ms = 15'000;

  // LL-HLS.
  int64_t hls_part_target_ms = 250;
  int64_t hls_segment_target_ms = 1000;
  int64_t hls_max_segment_ms = 4000;
  /// Per-channel targets, from `[hls.channels.NAME]` tables in the TOML file only.
  std::map<std::string, HlsTargets> hls_channels;
  /// Per-channel ladders (`ladder` in `[hls.channels.NAME]`), as transcode.ladder; "" = none.
  std::map<std::string, std::string> channel_ladders;

  // Transcoded renditions (docs/transcode.md).
  std::string transcode_enabled = "true";
  std::string transcode_ladder = "720:3000:30,480:1400:30,360:800:30";
  /// Percent of real time a channel's ladder may spend decoding and encoding before its
  /// costliest rung is dropped.
  int64_t transcode_realtime_budget = 90;
  int64_t transcode_retry_after_ms = 60'000;

  // Broadcasts and streamers' email.
  /// A key that publishes with nothing scheduled creates an unscheduled broadcast.
  std::string broadcasts_allow_unscheduled = "true";
  /// Keys publish only from broadcasts.early before a scheduled start to broadcasts.late after
  /// its end.
  std::string broadcasts_key_window = "false";
  int64_t broadcasts_early_ms = 15 * 60'000;
  int64_t broadcasts_late_ms = 30 * 60'000;
  /// smtp:// or smtps:// URL of the mail server; empty writes .eml files under DATA_DIR/mail.
  std::string smtp_url;
  std::string smtp_from = "hawker@localhost";
  std::string smtp_user;
  std::string smtp_password;
  /// "try": STARTTLS when the server offers it; "required": refuse to send without TLS.
  std::string smtp_starttls = "try";
  int64_t smtp_retry_initial_ms = 30'000;
  int64_t smtp_retry_max_ms = 3'600'000;

  int64_t shutdown_deadline_ms = 10'000;

  /// The targets a channel gets: its own where set, else the server's ("": the server's).
  HlsTargets hls_targets(const std::string& channel) const;
  /// The URL playback and dashboard links are built on.
  std::string effective_public_url() const;
  /// The RTMP server URL a streamer puts in OBS ("rtmp://host:1935/live").
  std::string effective_rtmp_url() const;
};

/// One configuration key, known under three names: `section.key` in TOML, `HAWKER_SECTION_KEY` in
/// the environment, `--section-key` on the command line.
struct ConfigKey {
  std::string key;
  std::string expected;  ///< the form a value must take, for error messages and help
  std::string help;
  std::function<Status(Config&, std::string_view)> set;
  std::function<std::string(const Config&)> get;
  bool secret = false;  ///< printed as [redacted] by `hawker config`

  std::string env_name() const;
  std::string flag_name() const;
};

/// Parses webhooks.retry-schedule ("0,5s,5m"): one to twenty durations of at most a day.
Result<std::vector<int64_t>> parse_retry_schedule(std::string_view text);

/// Every key hawker understands, in the order `hawker config` prints them.
const std::vector<ConfigKey>& config_keys();

/// Loads the configuration: defaults < TOML file (`--config FILE` or HAWKER_CONFIG) < HAWKER_*
/// environment < flags. `flags` maps flag names without dashes ("http-listen") to values.
/// A bad value or an unknown key is refused with a message naming the key and the expected form.
Result<Config> load_config(const std::map<std::string, std::string>& flags,
                           const std::function<const char*(const char*)>& getenv_fn);

/// The effective configuration as TOML, secrets redacted.
std::string render_config(const Config& config);

}  // namespace hawker::app

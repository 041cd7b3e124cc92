#include "app/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <charconv>
#include <fstream>
#include <set>

#include "core/log.h"

namespace hawker::app {
namespace {

Result<int64_t> parse_int(std::string_view text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) {
    return unexpected(ErrorCode::kInvalidArgument, "not a whole number");
  }
  return v;
}

Error bad_value(std::string_view key, std::string_view value, std::string_view expected) {
  return Error{ErrorCode::kInvalidArgument,
               fmt::format("{}: invalid value \"{}\": expected {}", key, value, expected)};
}

}  // namespace

Result<std::vector<LadderRungSetting>> parse_transcode_ladder(std::string_view text) {
  std::vector<LadderRungSetting> rungs;
  auto bad = [&](std::string_view why) {
    return Error{ErrorCode::kInvalidArgument,
                 fmt::format("transcode ladder \"{}\": {}", text, why)};
  };
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (comma != std::string_view::npos && rest.empty()) return bad("trailing comma");
    const size_t a = item.find(':');
    const size_t b = a == std::string_view::npos ? a : item.find(':', a + 1);
    if (b == std::string_view::npos) return bad("a rung is HEIGHT:KBPS:FPS");
    auto height = parse_int(item.substr(0, a));
    auto kbps = parse_int(item.substr(a + 1, b - a - 1));
    auto fps = parse_int(item.substr(b + 1));
    if (!height || !kbps || !fps || *height < 144 || *height > 2160 || *kbps < 100 ||
        *kbps > 50'000 || *fps < 1 || *fps > 120) {
      return bad("height 144-2160, 100-50000 kb/s, 1-120 fps");
    }
    if (!rungs.empty() && *height >= rungs.back().height) return bad("heights must decrease");
    rungs.push_back(LadderRungSetting{static_cast<int>(*height), *kbps, static_cast<int>(*fps)});
  }
  return rungs;
}

namespace {

/// Builds a key for an integer field with a unit parser and bounds.
ConfigKey int_key(std::string key, std::string expected, std::string help, int64_t Config::*field,
                  Result<int64_t> (*parse)(std::string_view), int64_t min, int64_t max,
                  std::string (*print)(int64_t)) {
  ConfigKey k;
  k.key = key;
  k.expected = expected;
  k.help = std::move(help);
  k.set = [key, expected, field, parse, min, max](Config& c, std::string_view v) -> Status {
    auto parsed = parse(v);
    if (!parsed || *parsed < min || *parsed > max) return bad_value(key, v, expected);
    c.*field = *parsed;
    return ok_status();
  };
  k.get = [field, print](const Config& c) { return print(c.*field); };
  return k;
}

std::string print_ms(int64_t ms) {
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}
std::string print_bytes(int64_t b) {
  if (b % (1024 * 1024) == 0) return fmt::format("{}MiB", b / (1024 * 1024));
  if (b % 1024 == 0) return fmt::format("{}KiB", b / 1024);
  return fmt::format("{}", b);
}
std::string print_int(int64_t v) { return fmt::format("{}", v); }
Result<int64_t> parse_plain_int(std::string_view v) { return parse_int(v); }

ConfigKey string_key(std::string key, std::string expected, std::string help,
                     std::string Config::*field, std::set<std::string> allowed = {}) {
  ConfigKey k;
  k.key = key;
  k.expected = expected;
  k.help = std::move(help);
  k.set = [key, expected, field, allowed](Config& c, std::string_view v) -> Status {
    if (!allowed.empty() && !allowed.count(std::string(v))) return bad_value(key, v, expected);
    c.*field = std::string(v);
    return ok_status();
  };
  k.get = [field](const Config& c) { return c.*field; };
  return k;
}

ConfigKey host_port_key(std::string key, std::string help, HostPort Config::*field) {
  ConfigKey k;
  k.key = key;
  k.expected = "HOST:PORT (for example 0.0.0.0:8080 or 127.0.0.1:0)";
  k.help = std::move(help);
  k.set = [key, expected = k.expected, field](Config& c, std::string_view v) -> Status {
    auto hp = parse_host_port(v);
    if (!hp) return bad_value(key, v, expected);
    c.*field = *hp;
    return ok_status();
  };
  k.get = [field](const Config& c) { return (c.*field).to_string(); };
  return k;
}

std::vector<ConfigKey> build_keys() {
  std::vector<ConfigKey> keys;
  keys.push_back(string_key("data-dir", "a directory path",
                            "where hawker keeps its database and files", &Config::data_dir));
  keys.back().set = [](Config& c, std::string_view v) -> Status {
    if (v.empty()) return bad_value("data-dir", v, "a directory path");
    c.data_dir = std::string(v);
    return ok_status();
  };
  keys.push_back(
      host_port_key("http.listen", "address the HTTP server binds", &Config::http_listen));
  keys.push_back(
      host_port_key("rtmp.listen", "address the RTMP ingest binds", &Config::rtmp_listen));
  keys.push_back(string_key("public.url", "an http(s):// URL or empty",
                            "base URL viewers reach hawker at (playback and email links)",
                            &Config::public_url));
  keys.back().set = [](Config& c, std::string_view v) -> Status {
    if (!v.empty() && v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0) {
      return bad_value("public.url", v, "an http(s):// URL or empty");
    }
    std::string url(v);
    while (!url.empty() && url.back() == '/') url.pop_back();
    c.public_url = url;
    return ok_status();
  };
  keys.push_back(string_key(
      "rtmp.public-url", "an rtmp:// URL or empty",
      "RTMP URL streamers publish to (empty: public.url's host, rtmp.listen's port, /live)",
      &Config::rtmp_public_url));
  keys.back().set = [](Config& c, std::string_view v) -> Status {
    if (!v.empty() && v.rfind("rtmp://", 0) != 0 && v.rfind("rtmps://", 0) != 0) {
      return bad_value("rtmp.public-url", v, "an rtmp:// URL or empty");
    }
    std::string url(v);
    while (!url.empty() && url.back() == '/') url.pop_back();
    c.rtmp_public_url = url;
    return ok_status();
  };
  keys.push_back(int_key("rtmp.reconnect-grace", "a duration from 0ms to 10m (e.g. 15s)",
                         "how long a dropped publisher's channel stays reconnecting before it ends",
                         &Config::rtmp_reconnect_grace_ms, parse_duration_ms, 0, 600'000,
                         print_ms));
  keys.push_back(int_key("rtmp.handshake-timeout", "a duration from 100ms to 10m (e.g. 10s)",
                         "time allowed for the RTMP handshake and publish",
                         &Config::rtmp_handshake_timeout_ms, parse_duration_ms, 100, 600'000,
                         print_ms));
  keys.push_back(int_key("rtmp.idle-timeout", "a duration from 100ms to 1h (e.g. 30s)",
                         "an RTMP connection that sends no media this long is closed",
                         &Config::rtmp_idle_timeout_ms, parse_duration_ms, 100, 3'600'000,
                         print_ms));
  keys.push_back(int_key("rtmp.max-connections", "a whole number from 1 to 100000",
                         "RTMP connections beyond this are closed at once",
                         &Config::rtmp_max_connections, parse_plain_int, 1, 100'000, print_int));
  keys.push_back(string_key("log.level", "one of debug, info, warn, error", "lowest level logged",
                            &Config::log_level, {"debug", "info", "warn", "error"}));
  keys.push_back(string_key("log.format", "text or json",
                            "log line format (json: one object a line)", &Config::log_format,
                            {"text", "json"}));
  keys.push_back(int_key("http.max-header-bytes", "a size from 1KiB to 1MiB (e.g. 16KiB)",
                         "largest request head accepted (431 beyond)",
                         &Config::http_max_header_bytes, parse_size_bytes, 1024, 1 << 20,
                         print_bytes));
  keys.push_back(int_key("http.max-body-bytes", "a size from 1KiB to 1GiB (e.g. 1MiB)",
                         "largest request body accepted (413 beyond)", &Config::http_max_body_bytes,
                         parse_size_bytes, 1024, int64_t{1} << 30, print_bytes));
  keys.push_back(int_key("http.header-timeout", "a duration from 100ms to 10m (e.g. 10s)",
                         "time allowed to send a request head (408 beyond)",
                         &Config::http_header_timeout_ms, parse_duration_ms, 100, 600'000,
                         print_ms));
  keys.push_back(int_key("http.body-timeout", "a duration from 100ms to 1h (e.g. 30s)",
                         "time allowed to send a request body (408 beyond)",
                         &Config::http_body_timeout_ms, parse_duration_ms, 100, 3'600'000,
                         print_ms));
  keys.push_back(int_key("http.idle-timeout", "a duration from 100ms to 1h (e.g. 60s)",
                         "keep-alive connections idle this long are closed",
                         &Config::http_idle_timeout_ms, parse_duration_ms, 100, 3'600'000,
                         print_ms));
  keys.push_back(int_key("http.max-connections", "a whole number from 1 to 1000000",
                         "connections beyond this are refused", &Config::http_max_connections,
                         parse_plain_int, 1, 1'000'000, print_int));
  keys.push_back(string_key("http.cors-origins", "* or a comma-separated list of origins",
                            "origins allowed to call hawker from a browser",
                            &Config::http_cors_origins));
  keys.push_back(
      string_key("storage.synchronous", "normal, full or extra",
                 "SQLite synchronous mode (full: an acknowledged write survives power loss)",
                 &Config::storage_synchronous, {"normal", "full", "extra"}));
  keys.push_back(int_key("storage.max-batch", "a whole number from 1 to 1024",
                         "most writes committed in one transaction (1: one per write, bench only)",
                         &Config::storage_max_batch, parse_plain_int, 1, 1024, print_int));
  keys.push_back(int_key("storage.checkpoint-pages", "a whole number from 0 to 1000000",
                         "WAL pages after which a checkpointer thread copies the WAL into the "
                         "database file and the writer finishes between batches (0: inside the "
                         "commit, as SQLite does)",
                         &Config::storage_checkpoint_pages, parse_plain_int, 0, 1'000'000,
                         print_int));
  keys.push_back(int_key("orders.payment-window", "a duration from 1s to 24h (e.g. 10m)",
                         "how long a reservation holds its stock for payment",
                         &Config::orders_payment_window_ms, parse_duration_ms, 1000, 86'400'000,
                         print_ms));
  keys.push_back(int_key("orders.low-stock-threshold", "a whole number from 0 to 1000000",
                         "default stock level below which a product reports stock.low",
                         &Config::orders_low_stock_threshold, parse_plain_int, 0, 1'000'000,
                         print_int));
  keys.push_back(string_key("payments.provider", "test or hosted",
                            "test: virtual money on hawker's own page; hosted: a checkout URL",
                            &Config::payments_provider, {"test", "hosted"}));
  keys.push_back(string_key("payments.hosted-checkout-url", "an https:// URL or empty",
                            "where buyers are sent to pay when payments.provider = hosted",
                            &Config::payments_hosted_checkout_url));
  keys.back().set = [](Config& c, std::string_view v) -> Status {
    if (!v.empty() && v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0) {
      return bad_value("payments.hosted-checkout-url", v, "an http(s):// URL or empty");
    }
    c.payments_hosted_checkout_url = std::string(v);
    return ok_status();
  };
  keys.push_back(string_key("payments.hosted-secret", "a secret of 16+ characters (whsec_... ok)",
                            "HMAC key the hosted provider signs payment webhooks with",
                            &Config::payments_hosted_secret));
  keys.back().secret = true;
  keys.back().set = [](Config& c, std::string_view v) -> Status {
    if (!v.empty() && v.size() < 16) {
      return Error{ErrorCode::kInvalidArgument,
                   "payments.hosted-secret: too short: expected a secret of 16+ characters"};
    }
    c.payments_hosted_secret = std::string(v);
    return ok_status();
  };
  keys.push_back(string_key("http.secure-cookies", "true or false",
                            "mark the dashboard session cookie Secure (set when behind TLS)",
                            &Config::http_secure_cookies, {"true", "false"}));
  keys.push_back(string_key("webhooks.allow-private", "true or false",
                            "let webhooks reach loopback and private addresses (tests only)",
                            &Config::webhooks_allow_private, {"true", "false"}));
  keys.push_back(string_key("webhooks.retry-schedule",
                            "comma-separated durations, 1 to 20, each at most 24h",
                            "waits before each webhook delivery attempt (about three days)",
                            &Config::webhooks_retry_schedule));
  keys.back().set = [](Config& c, std::string_view v) -> Status {
    if (!parse_retry_schedule(v)) {
      return bad_value("webhooks.retry-schedule", v,
                       "comma-separated durations, 1 to 20, each at most 24h");
    }
    c.webhooks_retry_schedule = std::string(v);
    return ok_status();
  };
  keys.push_back(int_key("webhooks.poll-interval", "a duration from 100ms to 1m (e.g. 5s)",
                         "how often the outbox and due deliveries are checked without a wake-up",
                         &Config::webhooks_poll_interval_ms, parse_duration_ms, 100, 60'000,
                         print_ms));
  keys.push_back(int_key("sse.coalesce-interval", "a duration from 0ms to 10s (e.g. 250ms)",
                         "at most one stock update per product this often on viewers' streams",
                         &Config::sse_coalesce_ms, parse_duration_ms, 0, 10'000, print_ms));
  keys.push_back(int_key("sse.keepalive", "a duration from 1s to 5m (e.g. 15s)",
                         "comment lines sent this often on idle event streams",
                         &Config::sse_keepalive_ms, parse_duration_ms, 1'000, 300'000, print_ms));
  keys.push_back(int_key("hls.part-target", "a duration from 100ms to 2s (e.g. 250ms)",
                         "LL-HLS part target (PART-TARGET); under hls.segment-target",
                         &Config::hls_part_target_ms, parse_duration_ms, 100, 2000, print_ms));
  keys.push_back(int_key("hls.segment-target", "a duration from 500ms to 10s (e.g. 1s)",
                         "a segment closes at the first keyframe after this long",
                         &Config::hls_segment_target_ms, parse_duration_ms, 500, 10'000, print_ms));
  keys.push_back(int_key("hls.max-segment", "a duration from 1s to 30s (e.g. 4s)",
                         "segments are cut without a keyframe at this length (TARGETDURATION)",
                         &Config::hls_max_segment_ms, parse_duration_ms, 1000, 30'000, print_ms));
  keys.push_back(string_key("transcode.enabled", "true or false",
                            "transcode renditions below the source's height (the ladder)",
                            &Config::transcode_enabled, {"true", "false"}));
  {
    ConfigKey k = string_key("transcode.ladder",
                             "HEIGHT:KBPS:FPS rungs, highest first (e.g. 720:3000:30,480:1400:30)",
                             "rungs of the ladder: height, video kb/s and maximum frame rate; "
                             "rungs at or above the source's height are skipped",
                             &Config::transcode_ladder);
    k.set = [expected = k.expected](Config& c, std::string_view v) -> Status {
      if (!parse_transcode_ladder(v)) return bad_value("transcode.ladder", v, expected);
      c.transcode_ladder = std::string(v);
      return ok_status();
    };
    keys.push_back(std::move(k));
  }
  keys.push_back(int_key("transcode.realtime-budget", "a whole number of percent from 1 to 100",
                         "share of real time a channel's ladder may spend encoding; beyond it "
                         "the costliest rung is dropped",
                         &Config::transcode_realtime_budget, parse_plain_int, 1, 100, print_int));
  keys.push_back(int_key("transcode.retry-after", "a duration from 1s to 1h (e.g. 60s)",
                         "a dropped rung is tried again after this much media time",
                         &Config::transcode_retry_after_ms, parse_duration_ms, 1000, 3'600'000,
                         print_ms));
  keys.push_back(string_key("broadcasts.allow-unscheduled", "true or false",
                            "a key publishing with nothing scheduled starts an unscheduled show",
                            &Config::broadcasts_allow_unscheduled, {"true", "false"}));
  keys.push_back(string_key("broadcasts.key-window", "true or false",
                            "keys publish only from broadcasts.early before a scheduled show to "
                            "broadcasts.late after it",
                            &Config::broadcasts_key_window, {"true", "false"}));
  keys.push_back(int_key("broadcasts.early", "a duration from 0ms to 24h (e.g. 15m)",
                         "a scheduled show may go live this long before its start",
                         &Config::broadcasts_early_ms, parse_duration_ms, 0, 86'400'000, print_ms));
  keys.push_back(int_key("broadcasts.late", "a duration from 0ms to 24h (e.g. 30m)",
                         "with key windows, a key still publishes this long after a show's end",
                         &Config::broadcasts_late_ms, parse_duration_ms, 0, 86'400'000, print_ms));
  keys.push_back(string_key(
      "smtp.url", "an smtp:// or smtps:// URL or empty",
      "mail server for streamers' emails (empty: .eml files in DATA_DIR/mail)", &Config::smtp_url));
  keys.back().set = [](Config& c, std::string_view v) -> Status {
    if (!v.empty() && v.rfind("smtp://", 0) != 0 && v.rfind("smtps://", 0) != 0) {
      return bad_value("smtp.url", v, "an smtp:// or smtps:// URL or empty");
    }
    c.smtp_url = std::string(v);
    return ok_status();
  };
  keys.push_back(string_key("smtp.from", "an email address", "sender of streamers' emails",
                            &Config::smtp_from));
  keys.back().set = [](Config& c, std::string_view v) -> Status {
    size_t at = v.find('@');
    bool ok = at != std::string_view::npos && at > 0 && at + 1 < v.size() && v.size() <= 254 &&
              v.find_first_of(" \t\r\n<>,;\"") == std::string_view::npos;
    if (!ok) return bad_value("smtp.from", v, "an email address");
    c.smtp_from = std::string(v);
    return ok_status();
  };
  keys.push_back(string_key("smtp.user", "a user name or empty", "SMTP AUTH user (empty: no AUTH)",
                            &Config::smtp_user));
  keys.push_back(string_key("smtp.password", "a password or empty", "SMTP AUTH password",
                            &Config::smtp_password));
  keys.back().secret = true;
  keys.push_back(string_key("smtp.starttls", "try or required",
                            "on smtp:// URLs, STARTTLS when offered (try) or always (required)",
                            &Config::smtp_starttls, {"try", "required"}));
  keys.push_back(int_key("smtp.retry-initial", "a duration from 100ms to 1h (e.g. 30s)",
                         "wait after a failed send; doubles each attempt up to smtp.retry-max",
                         &Config::smtp_retry_initial_ms, parse_duration_ms, 100, 3'600'000,
                         print_ms));
  keys.push_back(int_key("smtp.retry-max", "a duration from 100ms to 24h (e.g. 1h)",
                         "longest wait between two attempts to send an email",
                         &Config::smtp_retry_max_ms, parse_duration_ms, 100, 86'400'000, print_ms));
  keys.push_back(int_key("shutdown.deadline", "a duration from 0ms to 10m (e.g. 10s)",
                         "how long in-flight requests may take to finish at shutdown",
                         &Config::shutdown_deadline_ms, parse_duration_ms, 0, 600'000, print_ms));
  return keys;
}

std::string toml_value_string(const toml::node& node) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return fmt::format("{}", i->get());
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  if (auto f = node.as_floating_point()) return fmt::format("{}", f->get());
  // Arrays and other values have no single-string form; refuse them through the key's parser.
  return node.is_array() ? "<array>" : "<table>";
}

/// Flattens a TOML table into dotted keys: [http] listen = ... -> "http.listen".
void flatten(const toml::table& table, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out) {
  for (const auto& [k, v] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = v.as_table()) {
      flatten(*sub, key, out);
    } else {
      out.emplace_back(key, toml_value_string(v));
    }
  }
}

std::string normalise_key(std::string key) {
  for (char& c : key) {
    if (c == '_') c = '-';
  }
  return key;
}

constexpr std::string_view kHlsChannels = "hls.channels.";

/// `hls.channels.NAME.KEY = VALUE` from the TOML file: one channel's own targets.
Status set_channel_hls(Config& config, const std::string& key, const std::string& value) {
  std::string rest = key.substr(kHlsChannels.size());
  size_t dot = rest.rfind('.');
  if (dot == std::string::npos || dot == 0) {
    return Error{ErrorCode::kInvalidArgument,
                 fmt::format("unknown key \"{}\": expected [hls.channels.NAME] with part-target, "
                             "segment-target, max-segment or ladder",
                             key)};
  }
  const std::string channel = rest.substr(0, dot);
  const std::string field = normalise_key(rest.substr(dot + 1));
  if (field == "ladder") {
    if (auto rungs = parse_transcode_ladder(value); !rungs) {
      return Error{ErrorCode::kInvalidArgument,
                   fmt::format("{} (in {})", rungs.error().message, key)};
    }
    config.channel_ladders[channel] = value;
    return ok_status();
  }
  const char* server_key = field == "part-target"      ? "hls.part-target"
                           : field == "segment-target" ? "hls.segment-target"
                           : field == "max-segment"    ? "hls.max-segment"
                                                       : nullptr;
  if (server_key == nullptr) {
    return Error{ErrorCode::kInvalidArgument,
                 fmt::format("unknown key \"{}\": a channel sets part-target, segment-target, "
                             "max-segment or ladder",
                             key)};
  }
  // Parsed and bounded exactly as the server-wide key is.
  Config scratch;
  for (const auto& k : config_keys()) {
    if (k.key == server_key) {
      auto set = k.set(scratch, value);
      if (!set) {
        return Error{ErrorCode::kInvalidArgument,
                     fmt::format("{} (in {})", set.error().message, key)};
      }
    }
  }
  HlsTargets& targets = config.hls_channels[channel];
  if (field == "part-target") targets.part_target_ms = scratch.hls_part_target_ms;
  if (field == "segment-target") targets.segment_target_ms = scratch.hls_segment_target_ms;
  if (field == "max-segment") targets.max_segment_ms = scratch.hls_max_segment_ms;
  return ok_status();
}

Status validate_hls_targets(const HlsTargets& t, std::string_view where) {
  if (t.part_target_ms >= t.segment_target_ms || t.segment_target_ms > t.max_segment_ms) {
    return Error{
        ErrorCode::kInvalidArgument,
        fmt::format("{}: need part-target < segment-target <= max-segment (got {}, {}, {})", where,
                    print_ms(t.part_target_ms), print_ms(t.segment_target_ms),
                    print_ms(t.max_segment_ms))};
  }
  return ok_status();
}

}  // namespace

Result<std::vector<int64_t>> parse_retry_schedule(std::string_view text) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    auto ms = parse_duration_ms(item);
    if (!ms || *ms < 0 || *ms > 86'400'000) {
      return unexpected(ErrorCode::kInvalidArgument, fmt::format("bad duration \"{}\"", item));
    }
    out.push_back(*ms);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (out.empty() || out.size() > 20) {
    return unexpected(ErrorCode::kInvalidArgument, "expected 1 to 20 durations");
  }
  return out;
}

HlsTargets Config::hls_targets(const std::string& channel) const {
  HlsTargets t{hls_part_target_ms, hls_segment_target_ms, hls_max_segment_ms};
  auto it = hls_channels.find(channel);
  if (it != hls_channels.end()) {
    if (it->second.part_target_ms > 0) t.part_target_ms = it->second.part_target_ms;
    if (it->second.segment_target_ms > 0) t.segment_target_ms = it->second.segment_target_ms;
    if (it->second.max_segment_ms > 0) t.max_segment_ms = it->second.max_segment_ms;
  }
  return t;
}

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<HostPort> parse_host_port(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return unexpected(ErrorCode::kInvalidArgument, "missing :PORT");
  }
  std::string host(text.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  auto port = parse_int(text.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) {
    return unexpected(ErrorCode::kInvalidArgument, "port must be 0-65535");
  }
  if (host.find_first_of(" /") != std::string::npos) {
    return unexpected(ErrorCode::kInvalidArgument, "bad host");
  }
  return HostPort{host, static_cast<int>(*port)};
}

Result<int64_t> parse_duration_ms(std::string_view text) {
  static const std::pair<std::string_view, int64_t> kUnits[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};
  for (const auto& [suffix, scale] : kUnits) {
    if (text.size() > suffix.size() && text.ends_with(suffix)) {
      auto digits = text.substr(0, text.size() - suffix.size());
      // "10ms" also ends with "s": only accept when the rest is all digits.
      auto v = parse_int(digits);
      if (v && *v >= 0) return *v * scale;
    }
  }
  auto v = parse_int(text);
  if (!v || *v < 0) return unexpected(ErrorCode::kInvalidArgument, "not a duration");
  return *v;
}

Result<int64_t> parse_size_bytes(std::string_view text) {
  static const std::pair<std::string_view, int64_t> kUnits[] = {
      {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", int64_t{1} << 30},
      {"KB", 1000},  {"MB", 1000 * 1000},  {"B", 1}};
  for (const auto& [suffix, scale] : kUnits) {
    if (text.size() > suffix.size() && text.ends_with(suffix)) {
      auto v = parse_int(text.substr(0, text.size() - suffix.size()));
      if (v && *v >= 0) return *v * scale;
    }
  }
  auto v = parse_int(text);
  if (!v || *v < 0) return unexpected(ErrorCode::kInvalidArgument, "not a size");
  return *v;
}

std::string Config::effective_public_url() const {
  if (!public_url.empty()) return public_url;
  std::string host = http_listen.host;
  if (host == "0.0.0.0" || host == "::" || host.empty()) host = "localhost";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return fmt::format("http://{}:{}", host, http_listen.port);
}

std::string Config::effective_rtmp_url() const {
  if (!rtmp_public_url.empty()) return rtmp_public_url;
  // The host streamers reach is the host viewers reach, unless told otherwise.
  std::string base = effective_public_url();
  std::string host = base.substr(base.find("://") + 3);
  host = host.substr(0, host.find('/'));
  if (host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return fmt::format("rtmp://{}:{}/live", host, rtmp_listen.port);
}

std::string ConfigKey::env_name() const {
  std::string out = "HAWKER_";
  for (char c : key) {
    out += (c == '.' || c == '-') ? '_'
                                  : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string ConfigKey::flag_name() const {
  std::string out;
  for (char c : key) out += c == '.' ? '-' : c;
  return out;
}

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = build_keys();
  return keys;
}

Result<Config> load_config(const std::map<std::string, std::string>& flags,
                           const std::function<const char*(const char*)>& getenv_fn) {
  Config config;
  const auto& keys = config_keys();
  auto find_key = [&](const std::string& name) -> const ConfigKey* {
    std::string n = normalise_key(name);
    for (const auto& k : keys) {
      if (k.key == n || k.flag_name() == n) return &k;
    }
    return nullptr;
  };

  std::string config_file;
  if (const char* env = getenv_fn("HAWKER_CONFIG")) config_file = env;
  if (auto it = flags.find("config"); it != flags.end()) config_file = it->second;

  if (!config_file.empty()) {
    toml::table table;
    try {
      table = toml::parse_file(config_file);
    } catch (const toml::parse_error& e) {
      return unexpected(ErrorCode::kInvalidArgument,
                        fmt::format("config file {}: {} (line {})", config_file, e.description(),
                                    e.source().begin.line));
    }
    std::vector<std::pair<std::string, std::string>> entries;
    flatten(table, "", entries);
    for (const auto& [key, value] : entries) {
      if (key.rfind(kHlsChannels, 0) == 0) {
        HAWKER_TRY_STATUS(set_channel_hls(config, key, value),
                          fmt::format("config file {}", config_file));
        continue;
      }
      const ConfigKey* ck = find_key(key);
      if (ck == nullptr) {
        return unexpected(ErrorCode::kInvalidArgument,
                          fmt::format("config file {}: unknown key \"{}\"", config_file, key));
      }
      HAWKER_TRY_STATUS(ck->set(config, value), fmt::format("config file {}", config_file));
    }
  }

  for (const auto& k : keys) {
    if (const char* env = getenv_fn(k.env_name().c_str())) {
      HAWKER_TRY_STATUS(k.set(config, env), fmt::format("environment {}", k.env_name()));
    }
  }

  for (const auto& [name, value] : flags) {
    if (name == "config") continue;
    const ConfigKey* ck = find_key(name);
    if (ck == nullptr) {
      return unexpected(ErrorCode::kInvalidArgument, fmt::format("unknown flag --{}", name));
    }
    HAWKER_TRY_STATUS(ck->set(config, value), fmt::format("flag --{}", name));
  }
  HAWKER_TRY_STATUS(validate_hls_targets(config.hls_targets(""), "hls"), "configuration");
  for (const auto& [channel, targets] : config.hls_channels) {
    HAWKER_TRY_STATUS(validate_hls_targets(config.hls_targets(channel),
                                           fmt::format("[hls.channels.{}]", channel)),
                      "configuration");
  }
  return config;
}

std::string render_config(const Config& config) {
  // Group keys by their section so the output is valid TOML that load_config reads back.
  std::string top;
  std::map<std::string, std::string> sections;
  std::vector<std::string> order;
  for (const auto& k : config_keys()) {
    std::string value = k.secret && !k.get(config).empty() ? "[redacted]" : k.get(config);
    size_t dot = k.key.find('.');
    if (dot == std::string::npos) {
      top += fmt::format("{} = \"{}\"  # {}\n", k.key == "data-dir" ? "data_dir" : k.key,
                         log::json_escape(value), k.help);
      continue;
    }
    std::string section = k.key.substr(0, dot);
    std::string name = k.key.substr(dot + 1);
    if (!sections.count(section)) order.push_back(section);
    sections[section] += fmt::format("{} = \"{}\"  # {}\n", name, log::json_escape(value), k.help);
  }
  std::string out = top;
  for (const auto& s : order) out += fmt::format("\n[{}]\n{}", s, sections[s]);
  std::set<std::string> channels;
  for (const auto& entry : config.hls_channels) channels.insert(entry.first);
  for (const auto& entry : config.channel_ladders) channels.insert(entry.first);
  for (const std::string& channel : channels) {
    out += fmt::format("\n[hls.channels.{}]\n", channel);
    if (auto l = config.channel_ladders.find(channel); l != config.channel_ladders.end()) {
      out += fmt::format("ladder = \"{}\"\n", l->second);
    }
    auto it = config.hls_channels.find(channel);
    if (it == config.hls_channels.end()) continue;
    const HlsTargets& t = it->second;
    if (t.part_target_ms > 0) {
      out += fmt::format("part-target = \"{}\"\n", print_ms(t.part_target_ms));
    }
    if (t.segment_target_ms > 0) {
      out += fmt::format("segment-target = \"{}\"\n", print_ms(t.segment_target_ms));
    }
    if (t.max_segment_ms > 0) {
      out += fmt::format("max-segment = \"{}\"\n", print_ms(t.max_segment_ms));
    }
  }
  return out;
}

}  // namespace hawker::app

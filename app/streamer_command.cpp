#include "app/streamer_command.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "app/broadcast_link.h"
#include "app/schema.h"
#include "commerce/broadcasts_api.h"
#include "commerce/mail.h"
#include "commerce/streamers.h"
#include "core/clock.h"
#include "core/loop.h"
#include "storage/store.h"

namespace hawker::app {
namespace {

using commerce::IssuedKey;
using commerce::Streamer;

nlohmann::json streamer_json(const Config& config, const Streamer& s) {
  return {{"channel", s.channel},
          {"email", s.email},
          {"status", commerce::to_string(s.status)},
          {"key_hint", s.key_hint.empty() ? "" : "…" + s.key_hint},
          {"created_at", format_rfc3339(s.created_at_ms)},
          {"key_rotated_at", format_rfc3339(s.key_rotated_at_ms)},
          {"rtmp_url", config.effective_rtmp_url()},
          {"playback_url",
           fmt::format("{}/live/{}/index.m3u8", config.effective_public_url(), s.channel)},
          {"watch_url", fmt::format("{}/watch/{}", config.effective_public_url(), s.channel)}};
}

/// The only place a stream key is printed: once, to the seller who asked for it.
nlohmann::json issued_json(const Config& config, const IssuedKey& issued) {
  nlohmann::json j = streamer_json(config, issued.streamer);
  j["stream_key"] = issued.key.reveal();
  return j;
}

int usage() {
  fmt::print(
      stderr,
      "usage:\n"
      "  hawker streamer add EMAIL --name CHANNEL   create a streamer and print their key\n"
      "  hawker streamer rotate CHANNEL             issue a new key (the old one stops at once)\n"
      "  hawker streamer revoke CHANNEL             stop the channel's key\n"
      "  hawker streamer list                       list streamers (never their keys)\n");
  return 2;
}

int fail(const Error& e) {
  fmt::print(stderr, "hawker streamer: {}\n", e.message);
  return e.code == ErrorCode::kInvalidArgument || e.code == ErrorCode::kAlreadyExists ||
                 e.code == ErrorCode::kNotFound
             ? 1
             : 3;
}

}  // namespace

int streamer_command(const Config& config, const CommandLine& cl) {
  if (cl.positional.size() < 2) return usage();
  const std::string& verb = cl.positional[1];

  Loop loop;
  storage::StoreOptions options = hawker_store_options(config);
  options.reader_threads = 1;
  storage::Store store(loop, options);
  if (auto s = store.open(); !s) return fail(s.error());
  int64_t now = SystemClock::instance().wall_ms();

  int code = 0;
  if (verb == "add" && cl.positional.size() == 3 && cl.has("name")) {
    std::string email = cl.positional[2];
    std::string channel = cl.flags.at("name");
    auto issued = store.write_sync<IssuedKey>(
        [&](storage::Database& db) { return commerce::add_streamer(db, email, channel, now); });
    if (!issued) return store.close(), fail(issued.error());
    fmt::print("{}\n", issued_json(config, *issued).dump(2));
  } else if (verb == "rotate" && cl.positional.size() == 3) {
    std::string channel = cl.positional[2];
    // The streamer's email is queued in the same transaction as the new key, then sent now
    // (or written as an .eml file); if the mail server is down, `hawker serve` retries it.
    auto issued = store.write_sync<IssuedKey>([&](storage::Database& db) -> Result<IssuedKey> {
      auto k = commerce::rotate_stream_key(db, channel, now);
      if (!k) return k;
      HAWKER_TRY_STATUS(commerce::queue_stream_key_mail(db, config.smtp_from, k->streamer, k->key,
                                                        commerce::StreamKeyMail::Reason::kRotated,
                                                        config.effective_rtmp_url(),
                                                        config.effective_public_url(), now),
                        "queue the streamer's email");
      return k;
    });
    if (!issued) return store.close(), fail(issued.error());
    size_t sent =
        commerce::send_due_mail(store, smtp_settings(config), mail_sender_options(config), now);
    nlohmann::json out = issued_json(config, *issued);
    out["email_sent"] = sent > 0;
    fmt::print("{}\n", out.dump(2));
  } else if (verb == "revoke" && cl.positional.size() == 3) {
    std::string channel = cl.positional[2];
    auto revoked = store.write_sync<Streamer>(
        [&](storage::Database& db) { return commerce::revoke_streamer(db, channel, now); });
    if (!revoked) return store.close(), fail(revoked.error());
    fmt::print("{}\n", streamer_json(config, *revoked).dump(2));
  } else if (verb == "list" && cl.positional.size() == 2) {
    auto all = store.read_sync<std::vector<Streamer>>(
        [](storage::Database& db) { return commerce::list_streamers(db); });
    if (!all) return store.close(), fail(all.error());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : *all) list.push_back(streamer_json(config, s));
    fmt::print("{}\n", list.dump(2));
  } else {
    code = usage();
  }
  store.close();
  return code;
}

}  // namespace hawker::app

#include "commerce/broadcasts.h"

#include <doctest/doctest.h>

#include "commerce/catalogue.h"
#include "commerce/mail.h"
#include "core/clock.h"

using namespace hawker;
using namespace hawker::commerce;

namespace {

constexpr int64_t kMin = 60'000;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kNow = 1'800'000'000'000;

storage::Database memory_db() {
  auto db = storage::Database::open({.path = ":memory:", .wal = false});
  REQUIRE(db);
  storage::Schema schema;
  schema.add(streamer_migrations());
  schema.add(event_migrations());
  schema.add(catalogue_migrations());
  schema.add(broadcast_migrations());
  schema.add(mail_migrations());
  REQUIRE(storage::apply_migrations(*db, schema));
  return std::move(*db);
}

Broadcast scheduled(int64_t starts, int64_t ends, std::string id = "bc") {
  Broadcast b;
  b.id = std::move(id);
  b.starts_at_ms = starts;
  b.ends_at_ms = ends;
  return b;
}

BroadcastFields fields(std::string email, int64_t starts, int64_t ends) {
  BroadcastFields f;
  f.title = "Spring mugs";
  f.starts_at_ms = starts;
  f.ends_at_ms = ends;
  f.streamer_email = std::move(email);
  return f;
}

}  // namespace

TEST_CASE("the broadcast transition table allows exactly the documented moves") {
  using S = BroadcastStatus;
  using A = BroadcastAction;
  CHECK(*broadcast_transition(S::kScheduled, A::kGoLive) == S::kLive);
  CHECK(*broadcast_transition(S::kLive, A::kGoLive) == S::kLive);
  CHECK(*broadcast_transition(S::kLive, A::kEnd) == S::kEnded);
  CHECK(*broadcast_transition(S::kScheduled, A::kCancel) == S::kCancelled);
  CHECK(*broadcast_transition(S::kScheduled, A::kEdit) == S::kScheduled);
  CHECK(*broadcast_transition(S::kLive, A::kPin) == S::kLive);

  CHECK_FALSE(broadcast_transition(S::kScheduled, A::kEnd));
  CHECK_FALSE(broadcast_transition(S::kLive, A::kCancel));
  for (auto done : {S::kEnded, S::kCancelled}) {
    for (auto a : {A::kGoLive, A::kEnd, A::kCancel, A::kEdit, A::kPin}) {
      auto r = broadcast_transition(done, a);
      REQUIRE_FALSE(r);
      CHECK(r.error().code == ErrorCode::kConflict);
    }
  }
  CHECK(broadcast_transition(S::kEnded, A::kGoLive).error().message ==
        "a broadcast that is ended cannot go live");
}

TEST_CASE("go-live picks a live show, then the one in its window, then the next one soon") {
  GoLiveRule rule;  // 15 min early, 12 h lookahead
  std::vector<Broadcast> open = {scheduled(kNow + 2 * kHour, kNow + 3 * kHour, "later"),
                                 scheduled(kNow + 10 * kMin, kNow + kHour, "soon")};
  // 10 minutes before "soon": inside its early margin.
  CHECK(select_for_go_live(open, kNow, rule) == 1u);
  // An hour and a half before "later", after "soon" ended: "later" is next within the lookahead.
  CHECK(select_for_go_live(open, kNow + 70 * kMin, rule) == 0u);
  // Beyond the lookahead: nothing (an unscheduled show may be created instead).
  rule.lookahead_ms = kHour;
  CHECK_FALSE(select_for_go_live(open, kNow - 2 * kHour, rule));
  // A show already live wins (a reconnect).
  open[0].status = BroadcastStatus::kLive;
  CHECK(select_for_go_live(open, kNow, rule) == 0u);
  // Two overlapping windows: the earlier start.
  std::vector<Broadcast> overlap = {scheduled(kNow - 5 * kMin, kNow + kHour, "b"),
                                    scheduled(kNow - 30 * kMin, kNow + kHour, "a")};
  CHECK(select_for_go_live(overlap, kNow, GoLiveRule{}) == 1u);
}

TEST_CASE("key windows refuse early and late publishes with a reason") {
  GoLiveRule rule;
  rule.key_window = true;
  rule.early_ms = 15 * kMin;
  rule.late_ms = 30 * kMin;
  std::vector<Broadcast> open = {scheduled(kNow, kNow + kHour)};
  CHECK_FALSE(key_window_refusal(open, kNow - 15 * kMin, rule));
  CHECK_FALSE(key_window_refusal(open, kNow + kHour + 30 * kMin, rule));
  auto early = key_window_refusal(open, kNow - 16 * kMin, rule);
  REQUIRE(early);
  CHECK(early->find("too early") != std::string::npos);
  CHECK(early->find(format_rfc3339(kNow - 15 * kMin)) != std::string::npos);
  auto late = key_window_refusal(open, kNow + kHour + 31 * kMin, rule);
  REQUIRE(late);
  CHECK(late->find("no broadcast is scheduled") != std::string::npos);
  CHECK(key_window_refusal(std::vector<Broadcast>{}, kNow, rule));
  open[0].status = BroadcastStatus::kLive;
  CHECK_FALSE(key_window_refusal(open, kNow + 5 * kHour, rule));
  rule.key_window = false;
  CHECK_FALSE(key_window_refusal(std::vector<Broadcast>{}, kNow, rule));
}

TEST_CASE("creating a broadcast creates the streamer once and the key only then") {
  auto db = memory_db();
  auto first = create_broadcast(db, fields("Ana.Lopez@example.com", kNow, kNow + kHour), kNow);
  REQUIRE(first);
  REQUIRE(first->issued);
  CHECK(first->broadcast.channel == "ana-lopez");
  CHECK(first->broadcast.status == BroadcastStatus::kScheduled);
  auto second = create_broadcast(
      db, fields("ana.lopez@example.com", kNow + 2 * kHour, kNow + 3 * kHour), kNow);
  REQUIRE(second);
  CHECK_FALSE(second->issued);
  CHECK(second->broadcast.channel == "ana-lopez");
  // Another person with the same local part gets their own channel.
  auto other = create_broadcast(db, fields("ana.lopez@other.org", kNow, kNow + kHour), kNow);
  REQUIRE(other);
  CHECK(other->broadcast.channel == "ana-lopez-2");

  BroadcastFields bad = fields("x@example.com", kNow, kNow + kHour);
  bad.product_ids = std::vector<std::string>{"prod_missing"};
  auto refused = create_broadcast(db, bad, kNow);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("go live, end, and the events they write") {
  auto db = memory_db();
  auto created = create_broadcast(db, fields("bo@example.com", kNow, kNow + kHour), kNow);
  REQUIRE(created);
  const Streamer& st = created->issued->streamer;
  std::vector<Event> events;
  auto live = go_live(db, st, kNow + kMin, GoLiveRule{}, events);
  REQUIRE(live);
  REQUIRE(live->has_value());
  CHECK((*live)->id == created->broadcast.id);
  CHECK((*live)->status == BroadcastStatus::kLive);
  REQUIRE(events.size() == 1);
  CHECK(events[0].type == "broadcast.live");
  CHECK(events[0].data()["broadcast_id"] == created->broadcast.id);
  CHECK(events[0].data_text.find("hwk_") == std::string::npos);

  // A reconnect changes nothing and writes no second event.
  auto again = go_live(db, st, kNow + 2 * kMin, GoLiveRule{}, events);
  REQUIRE(again);
  CHECK(events.size() == 1);

  auto ended = end_live(db, st.channel, kNow + 30 * kMin, events);
  REQUIRE(ended);
  REQUIRE(ended->size() == 1);
  CHECK(events.back().type == "broadcast.ended");
  auto found = find_broadcast(db, created->broadcast.id);
  REQUIRE(found);
  CHECK((*found)->status == BroadcastStatus::kEnded);
  CHECK((*found)->ended_at_ms == kNow + 30 * kMin);
  CHECK_FALSE(cancel_broadcast(db, created->broadcast.id, kNow));

  // Nothing scheduled: an unscheduled show only when allowed.
  GoLiveRule strict;
  strict.allow_unscheduled = false;
  auto none = go_live(db, st, kNow + 5 * kHour, strict, events);
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  auto unscheduled = go_live(db, st, kNow + 5 * kHour, GoLiveRule{}, events);
  REQUIRE(unscheduled);
  REQUIRE(unscheduled->has_value());
  CHECK((*unscheduled)->unscheduled);
  CHECK((*unscheduled)->status == BroadcastStatus::kLive);
}

TEST_CASE("parsing a broadcast body names the bad field") {
  BroadcastFields f;
  std::string field;
  auto body = nlohmann::json{{"title", "Show"},
                             {"starts_at", "2026-11-22T18:00:00Z"},
                             {"ends_at", "2026-11-22T17:00:00Z"},
                             {"streamer_email", "a@example.com"}};
  CHECK_FALSE(parse_broadcast_fields(body, true, f, field));
  CHECK(field == "ends_at");
  body["ends_at"] = "tomorrow";
  CHECK_FALSE(parse_broadcast_fields(body, true, f, field));
  CHECK(field == "ends_at");
  body["ends_at"] = "2026-11-22T19:00:00Z";
  body["colour"] = "red";
  CHECK_FALSE(parse_broadcast_fields(body, true, f, field));
  CHECK(field == "colour");
  body.erase("colour");
  body.erase("title");
  CHECK_FALSE(parse_broadcast_fields(body, true, f, field));
  CHECK(field == "title");
  body["title"] = "Show";
  BroadcastFields ok;
  REQUIRE(parse_broadcast_fields(body, true, ok, field));
  CHECK(*ok.ends_at_ms - *ok.starts_at_ms == kHour);
}

TEST_CASE("the stream key email carries key, URL, schedule and OBS settings in text and HTML") {
  StreamKeyMail m;
  m.to = "ana@example.com";
  m.channel = "ana";
  m.key = Secret("hwk_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
  m.rtmp_url = "rtmp://shop.example.com:1935/live";
  m.watch_url = "https://shop.example.com/watch/ana";
  m.schedule.push_back({"Mugs <b>& more</b>", kNow, kNow + kHour});
  MailMessage mail = render_stream_key_mail(m);
  for (const std::string* part : {&mail.text, &mail.html}) {
    CHECK(part->find(m.key.reveal()) != std::string::npos);
    CHECK(part->find(m.rtmp_url) != std::string::npos);
    CHECK(part->find(format_rfc3339(kNow).substr(0, 10)) != std::string::npos);
    CHECK(part->find("CBR") != std::string::npos);
    CHECK(part->find("1 s") != std::string::npos);
    CHECK(part->find("3000 Kbps") != std::string::npos);
  }
  CHECK(mail.html.find("Mugs &lt;b&gt;&amp; more&lt;/b&gt;") != std::string::npos);
  CHECK(mail.html.find("<b>& more") == std::string::npos);

  // Without a key issued now, only its hint.
  m.key = Secret();
  m.key_hint = "2345";
  MailMessage hint = render_stream_key_mail(m);
  CHECK(hint.text.find("hwk_") == std::string::npos);
  CHECK(hint.text.find("2345") != std::string::npos);
}

TEST_CASE("MIME rendering: headers well formed, no header injection, both parts") {
  MailMessage m;
  m.to = "ana@example.com";
  m.subject = "Show\r\nBcc: victim@example.com";
  m.text = "key hwk_x";
  m.html = "<p>key hwk_x</p>";
  auto mime = render_mime("shop@example.com", m, 1'795'000'000'000);
  REQUIRE(mime);
  std::string head = mime->substr(0, mime->find("\r\n\r\n"));
  CHECK(head.find("Date: Wed, 18 Nov 2026 11:06:40 +0000\r\n") == 0);
  CHECK(head.find("\r\nMessage-ID: <") != std::string::npos);
  CHECK(head.find("@example.com>\r\n") != std::string::npos);
  CHECK(head.find("\r\nFrom: hawker <shop@example.com>") != std::string::npos);
  CHECK(head.find("\r\nTo: <ana@example.com>") != std::string::npos);
  CHECK(head.find("\r\nMIME-Version: 1.0") != std::string::npos);
  CHECK(head.find("\r\nSubject: Show  Bcc: victim@example.com") != std::string::npos);
  CHECK(head.find("\r\nBcc:") == std::string::npos);
  CHECK(head.find("multipart/alternative; boundary=") != std::string::npos);
  for (size_t i = 0; i < mime->size(); ++i) {
    if ((*mime)[i] == '\n') CHECK((i > 0 && (*mime)[i - 1] == '\r'));
  }
  CHECK(mime->find("text/plain; charset=utf-8") != std::string::npos);
  CHECK(mime->find("text/html; charset=utf-8") != std::string::npos);
  CHECK(mime->find(base64_encode(m.text)) != std::string::npos);

  m.to = "ana@example.com\r\nBcc: x@example.com";
  CHECK_FALSE(render_mime("shop@example.com", m, 0));
  CHECK(encode_header_text("Café") == "=?UTF-8?B?" + base64_encode("Café") + "?=");
}

TEST_CASE("the mail outbox retries with backoff and erases the key once sent") {
  CHECK(mail_retry_delay_ms(1, 1000, 60'000) == 1000);
  CHECK(mail_retry_delay_ms(2, 1000, 60'000) == 2000);
  CHECK(mail_retry_delay_ms(4, 1000, 60'000) == 8000);
  CHECK(mail_retry_delay_ms(30, 1000, 60'000) == 60'000);

  auto db = memory_db();
  MailMessage m{"ana@example.com", "Key", "hwk_secret", "<p>hwk_secret</p>"};
  auto id = enqueue_mail(db, "shop@example.com", m, kNow);
  REQUIRE(id);
  auto due = claim_due_mail(db, kNow, 5 * kMin, 10);
  REQUIRE(due);
  REQUIRE(due->size() == 1);
  CHECK((*due)[0].attempts == 1);
  // Claimed: a second sender does not get it until the lease runs out.
  CHECK(claim_due_mail(db, kNow + kMin, 5 * kMin, 10)->empty());
  REQUIRE(mark_mail_failed(db, *id, "connection refused", kNow + 2000, false));
  CHECK(claim_due_mail(db, kNow + 1000, 5 * kMin, 10)->empty());
  auto retry = claim_due_mail(db, kNow + 2000, 5 * kMin, 10);
  REQUIRE(retry->size() == 1);
  CHECK((*retry)[0].attempts == 2);
  REQUIRE(mark_mail_sent(db, *id, kNow + 3000, "smtp://mail.example.com"));
  auto stmt = db.prepare("SELECT status, message FROM mail_outbox");
  REQUIRE(stmt);
  REQUIRE(*stmt->step() == storage::Statement::Step::kRow);
  CHECK(stmt->column_text(0) == "sent");
  CHECK(stmt->column_text(1).empty());
  CHECK(next_mail_due(db)->has_value() == false);
}

#include <doctest/doctest.h>

#include "commerce/password.h"
#include "commerce/payments.h"
#include "commerce/seller_auth.h"

using namespace hawker;
using namespace hawker::commerce;

TEST_CASE("scrypt hashes verify the right password only") {
  ScryptParams fast{.log2_n = 10, .r = 8, .p = 1};
  auto h = hash_password("correct horse battery", fast);
  REQUIRE(h);
  CHECK(h->rfind("scrypt$ln=10,r=8,p=1$", 0) == 0);
  CHECK(verify_password("correct horse battery", *h));
  CHECK_FALSE(verify_password("correct horse batterx", *h));
  CHECK_FALSE(verify_password("", *h));
  auto h2 = hash_password("correct horse battery", fast);
  CHECK(*h2 != *h);  // per-account salt
  CHECK_FALSE(verify_password("x", "scrypt$ln=10,r=8$AA==$AA=="));
  CHECK_FALSE(verify_password("x", "bcrypt$whatever"));
  CHECK_FALSE(verify_password("x", "scrypt$ln=40,r=8,p=1$AAAA$AAAA"));  // refused, not run
}

TEST_CASE("API tokens and sessions are stored hashed and found by their value") {
  auto db = storage::Database::open({.path = ":memory:", .wal = false});
  REQUIRE(db);
  storage::Schema schema;
  schema.add(seller_auth_migrations());
  REQUIRE(storage::apply_migrations(*db, schema));
  auto token = issue_api_token(*db, "support", 1000);
  REQUIRE(token);
  CHECK(token->token.reveal().rfind("hwt_", 0) == 0);
  auto who = principal_for_api_token(*db, token->token.reveal());
  REQUIRE(who);
  REQUIRE(who->has_value());
  CHECK((*who)->role == "support");
  CHECK_FALSE((*principal_for_api_token(*db, "hwt_nope")).has_value());
  CHECK_FALSE(issue_api_token(*db, "root", 1000));

  REQUIRE(set_admin_password(*db, "admin", "scrypt$x", 1000));
  auto s = create_session(*db, "admin", 1000, 60'000);
  REQUIRE(s);
  CHECK(s->csrf_token == csrf_token_for(s->token.reveal()));
  auto p = principal_for_session(*db, s->token.reveal(), 2000);
  REQUIRE(p);
  REQUIRE(p->has_value());
  CHECK((*p)->via_cookie);
  CHECK((*p)->role == "admin");
  CHECK_FALSE((*principal_for_session(*db, s->token.reveal(), 61'000)).has_value());
  // A new password ends the sessions opened with the old one.
  REQUIRE(set_admin_password(*db, "admin", "scrypt$y", 3000));
  CHECK_FALSE((*principal_for_session(*db, s->token.reveal(), 3000)).has_value());
}

TEST_CASE("cookies, CSRF and roles") {
  CHECK(cookie_value("a=1; hawker_session=abc; b=2", "hawker_session") == "abc");
  CHECK(cookie_value("hawker_session=\"q\"", "hawker_session") == "q");
  CHECK_FALSE(cookie_value("xhawker_session=abc", "hawker_session"));
  CHECK_FALSE(cookie_value("", "hawker_session"));
  std::string csrf = csrf_token_for("hws_session");
  CHECK(csrf_allows("GET", "hws_session", std::nullopt));
  CHECK_FALSE(csrf_allows("POST", "hws_session", std::nullopt));
  CHECK_FALSE(csrf_allows("POST", "hws_session", std::string_view("wrong")));
  CHECK_FALSE(csrf_allows("DELETE", "hws_other", std::string_view(csrf)));
  CHECK(csrf_allows("PATCH", "hws_session", std::string_view(csrf)));
  std::string cookie = session_cookie("tok", 3600, true);
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  CHECK(cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(cookie.find("; Secure") != std::string::npos);
  CHECK(session_cookie("tok", 3600, false).find("Secure") == std::string::npos);
  CHECK(role_allows("admin", "support"));
  CHECK(role_allows("support", "support"));
  CHECK_FALSE(role_allows("support", "admin"));
  CHECK(host_of("127.0.0.1:5000") == "127.0.0.1");
  CHECK(host_of("[::1]:5000") == "::1");
}

TEST_CASE("login throttle refuses after repeated failures until the window passes") {
  LoginThrottle t({.max_failures = 3, .window_ms = 1000, .max_tracked = 10});
  for (int i = 0; i < 3; ++i) {
    CHECK(t.retry_after_ms("a", 100) == 0);
    t.record_failure("a", 100);
  }
  CHECK(t.retry_after_ms("a", 200) == 900);
  CHECK(t.retry_after_ms("b", 200) == 0);
  CHECK(t.retry_after_ms("a", 1100) == 0);
  t.record_failure("a", 1200);  // a new window
  CHECK(t.retry_after_ms("a", 1200) == 0);
  t.record_success("a");
  CHECK(t.retry_after_ms("a", 1200) == 0);
}

TEST_CASE("hosted payment webhooks: Standard Webhooks signatures and tolerance") {
  // The Standard Webhooks reference test vector.
  Secret secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  std::string id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  std::string ts = "1614265330";
  std::string body = R"({"test": 2432232314})";
  CHECK(hosted_signature(secret, id, ts, body) == "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  int64_t now = 1614265330LL * 1000;
  std::string header = "v1,bad v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
  CHECK(verify_hosted_webhook(secret, id, ts, header, body, now));
  CHECK_FALSE(verify_hosted_webhook(secret, id, ts, header, body + " ", now));
  CHECK_FALSE(verify_hosted_webhook(secret, id, ts, header, body, now + 301'000));
  CHECK_FALSE(verify_hosted_webhook(secret, id, ts, "v1,bad", body, now));
  CHECK_FALSE(verify_hosted_webhook(secret, "", ts, header, body, now));
  CHECK_FALSE(verify_hosted_webhook(secret, id, "12x", header, body, now));

  Order o;
  o.id = "ord_1";
  o.amount_minor = 1500;
  o.currency = "EUR";
  o.token = "otk_1";
  std::string ref = signed_order_reference(secret, o);
  CHECK(ref.rfind("ord_1.1500.EUR.", 0) == 0);
  HostedPaymentProvider hosted("https://pay.example/checkout", secret, "https://shop.example");
  CHECK(hosted.payment_url(o).rfind("https://pay.example/checkout?reference=ord_1.1500.EUR.", 0) ==
        0);
  auto parsed = parse_hosted_payment(
      R"({"type":"payment.succeeded","order_id":"ord_1","payment_id":"p1","amount_minor":1500,"currency":"EUR"})");
  REQUIRE(parsed);
  CHECK(parsed->amount_minor == 1500);
  CHECK_FALSE(parse_hosted_payment(R"({"type":"payment.succeeded"})"));
}

#include "commerce/seller_auth.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commerce/json_body.h"
#include "commerce/password.h"

namespace hawker::commerce {
namespace {

constexpr storage::Migration kMigrations[] = {
    {120, "admin accounts, api tokens, sessions", R"sql(
CREATE TABLE admin_accounts (
  login TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT 'admin',
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
);
CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
);
CREATE TABLE admin_sessions (
  token_hash TEXT PRIMARY KEY,
  login TEXT NOT NULL REFERENCES admin_accounts(login) ON DELETE CASCADE,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions(expires_at_ms);
)sql"},
};

// A hash that verification runs against when the login is unknown, so an unknown login takes
// as long to refuse as a wrong password.
constexpr std::string_view kDummyHash =
    "scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

http::Response unauthenticated(std::string_view detail) {
  http::Response r =
      http::Response::problem(401, "unauthenticated", "Authentication required", detail);
  r.headers.set("WWW-Authenticate", "Bearer realm=\"hawker\"");
  r.headers.set("Cache-Control", "no-store");
  return r;
}

}  // namespace

std::span<const storage::Migration> seller_auth_migrations() { return kMigrations; }

Status set_admin_password(storage::Database& db, std::string_view login,
                          std::string_view password_hash, int64_t now_ms) {
  auto stmt = db.cached(
      "INSERT INTO admin_accounts (login, password_hash, created_at_ms, updated_at_ms) "
      "VALUES (?1, ?2, ?3, ?3) ON CONFLICT(login) DO UPDATE SET password_hash = excluded."
      "password_hash, updated_at_ms = excluded.updated_at_ms");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, login).bind_text(2, password_hash).bind_int64(3, now_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "store admin password");
  // A new password ends every session opened with the old one.
  auto drop = db.cached("DELETE FROM admin_sessions WHERE login = ?");
  if (!drop) return unexpected(std::move(drop).error());
  (*drop)->bind_text(1, login);
  return (*drop)->run();
}

Result<std::optional<std::string>> admin_password_hash(storage::Database& db,
                                                       std::string_view login) {
  auto stmt = db.cached("SELECT password_hash FROM admin_accounts WHERE login = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, login);
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone) return std::optional<std::string>{};
  return std::optional<std::string>{std::string((*stmt)->column_text(0))};
}

Result<IssuedApiToken> issue_api_token(storage::Database& db, std::string_view role,
                                       int64_t now_ms) {
  if (role != kRoleAdmin && role != kRoleSupport) {
    return unexpected(ErrorCode::kInvalidArgument,
                      fmt::format("unknown role \"{}\" (admin or support)", role));
  }
  auto token = random_token(kApiTokenPrefix, 32);
  if (!token) return unexpected(std::move(token).error());
  auto id = random_token("tokid_", 9);
  if (!id) return unexpected(std::move(id).error());
  auto stmt =
      db.cached("INSERT INTO api_tokens (id, token_hash, role, created_at_ms) VALUES (?, ?, ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, id->reveal())
      .bind_text(2, sha256_hex(token->reveal()))
      .bind_text(3, role)
      .bind_int64(4, now_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "store api token");
  return IssuedApiToken{id->reveal(), std::move(*token), std::string(role)};
}

Result<IssuedSession> create_session(storage::Database& db, std::string_view login, int64_t now_ms,
                                     int64_t ttl_ms) {
  auto sweep = db.cached("DELETE FROM admin_sessions WHERE expires_at_ms <= ?");
  if (!sweep) return unexpected(std::move(sweep).error());
  (*sweep)->bind_int64(1, now_ms);
  HAWKER_TRY_STATUS((*sweep)->run(), "sweep sessions");
  auto token = random_token("hws_", 32);
  if (!token) return unexpected(std::move(token).error());
  auto stmt = db.cached(
      "INSERT INTO admin_sessions (token_hash, login, created_at_ms, expires_at_ms) "
      "VALUES (?, ?, ?, ?)");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)
      ->bind_text(1, sha256_hex(token->reveal()))
      .bind_text(2, login)
      .bind_int64(3, now_ms)
      .bind_int64(4, now_ms + ttl_ms);
  HAWKER_TRY_STATUS((*stmt)->run(), "store session");
  IssuedSession s;
  s.csrf_token = csrf_token_for(token->reveal());
  s.token = std::move(*token);
  s.expires_at_ms = now_ms + ttl_ms;
  return s;
}

Status delete_session(storage::Database& db, std::string_view token) {
  auto stmt = db.cached("DELETE FROM admin_sessions WHERE token_hash = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, sha256_hex(token));
  return (*stmt)->run();
}

Result<std::optional<Principal>> principal_for_api_token(storage::Database& db,
                                                         std::string_view token) {
  if (!token.starts_with(kApiTokenPrefix)) return std::optional<Principal>{};
  auto stmt = db.cached("SELECT id, role FROM api_tokens WHERE token_hash = ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, sha256_hex(token));
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone) return std::optional<Principal>{};
  return std::optional<Principal>{
      Principal{std::string((*stmt)->column_text(0)), std::string((*stmt)->column_text(1)), false}};
}

Result<std::optional<Principal>> principal_for_session(storage::Database& db,
                                                       std::string_view token, int64_t now_ms) {
  auto stmt = db.cached(
      "SELECT s.login, a.role FROM admin_sessions s JOIN admin_accounts a ON a.login = s.login "
      "WHERE s.token_hash = ? AND s.expires_at_ms > ?");
  if (!stmt) return unexpected(std::move(stmt).error());
  (*stmt)->bind_text(1, sha256_hex(token)).bind_int64(2, now_ms);
  auto step = (*stmt)->step();
  if (!step) return unexpected(std::move(step).error());
  if (*step == storage::Statement::Step::kDone) return std::optional<Principal>{};
  return std::optional<Principal>{
      Principal{std::string((*stmt)->column_text(0)), std::string((*stmt)->column_text(1)), true}};
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (trim(pair.substr(0, eq)) == name) {
      std::string_view value = trim(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return std::string(value);
    }
  }
  return std::nullopt;
}

std::string csrf_token_for(std::string_view session_token) {
  return base64url_encode(hmac_sha256(session_token, "hawker csrf v1"));
}

bool csrf_allows(std::string_view method, std::string_view session_token,
                 std::optional<std::string_view> csrf_header) {
  if (method == "GET" || method == "HEAD" || method == "OPTIONS") return true;
  if (!csrf_header || csrf_header->empty()) return false;
  return constant_time_equal(*csrf_header, csrf_token_for(session_token));
}

std::string session_cookie(std::string_view token, int64_t max_age_s, bool secure) {
  return fmt::format("{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}", kSessionCookie,
                     token, max_age_s, secure ? "; Secure" : "");
}

bool role_allows(std::string_view have, std::string_view need) {
  return have == kRoleAdmin || have == need;
}

int64_t LoginThrottle::retry_after_ms(const std::string& address, int64_t now_ms) const {
  auto it = entries_.find(address);
  if (it == entries_.end() || it->second.failures < options_.max_failures) return 0;
  int64_t until = it->second.first_failure_ms + options_.window_ms;
  return until > now_ms ? until - now_ms : 0;
}

void LoginThrottle::record_failure(const std::string& address, int64_t now_ms) {
  if (entries_.size() >= options_.max_tracked && !entries_.count(address)) {
    std::erase_if(entries_, [&](const auto& kv) {
      return kv.second.first_failure_ms + options_.window_ms <= now_ms;
    });
    // Still full of live entries: forget the whole table rather than grow without bound; the
    // cost is that attackers spread over that many addresses get a fresh window.
    if (entries_.size() >= options_.max_tracked) entries_.clear();
  }
  Entry& e = entries_[address];
  if (e.failures == 0 || e.first_failure_ms + options_.window_ms <= now_ms) {
    e.failures = 0;
    e.first_failure_ms = now_ms;
  }
  ++e.failures;
}

std::string host_of(std::string_view remote) {
  if (!remote.empty() && remote.front() == '[') {
    size_t close = remote.find(']');
    return std::string(
        remote.substr(1, close == std::string_view::npos ? remote.size() - 1 : close - 1));
  }
  size_t colon = remote.rfind(':');
  if (colon != std::string_view::npos && remote.find(':') == colon) {
    return std::string(remote.substr(0, colon));
  }
  return std::string(remote);
}

SellerAuth::SellerAuth(storage::Store& store, const Clock& clock, SellerAuthOptions options)
    : store_(store), clock_(clock), options_(options) {}

void SellerAuth::require(const http::Request& request, const http::ExchangePtr& exchange,
                         std::function<void(const Principal&)> next, std::string_view role) {
  std::string token;
  bool via_cookie = false;
  if (auto authz = request.header("Authorization")) {
    std::string_view v = trim(*authz);
    if (v.size() > 7 && http::iequals(v.substr(0, 7), "Bearer ")) {
      token = std::string(trim(v.substr(7)));
    } else {
      exchange->respond(unauthenticated("use Authorization: Bearer <API token>"));
      return;
    }
  } else if (auto cookies = request.header("Cookie")) {
    if (auto v = cookie_value(*cookies, kSessionCookie)) {
      token = *v;
      via_cookie = true;
    }
  }
  if (token.empty()) {
    exchange->respond(unauthenticated("log in or send an API token"));
    return;
  }
  if (via_cookie && !csrf_allows(request.method, token, request.header("X-CSRF-Token"))) {
    exchange->respond(http::Response::problem(
        403, "csrf", "CSRF token missing or wrong",
        "cookie-authenticated writes need the session's X-CSRF-Token header"));
    return;
  }
  int64_t now = clock_.wall_ms();
  store_.read<std::optional<Principal>>(
      [token, via_cookie, now](storage::Database& db) {
        return via_cookie ? principal_for_session(db, token, now)
                          : principal_for_api_token(db, token);
      },
      [exchange, next = std::move(next),
       need = std::string(role)](Result<std::optional<Principal>> found) {
        if (!found) {
          exchange->respond(http::Response::problem(503, "storage-unavailable",
                                                    "Storage unavailable", found.error().message));
          return;
        }
        if (!found->has_value()) {
          exchange->respond(unauthenticated("the token or session is unknown or expired"));
          return;
        }
        const Principal& p = **found;
        if (!role_allows(p.role, need)) {
          exchange->respond(http::Response::problem(
              403, "forbidden", "Forbidden",
              fmt::format("role \"{}\" may not do this (needs \"{}\")", p.role, need)));
          return;
        }
        next(p);
      });
}

Status SellerAuth::add_routes(http::Router& router) {
  HAWKER_TRY_STATUS(
      router.add("POST", "/api/admin/login",
                 [this](const http::Request& r, http::ExchangePtr ex) { login(r, ex); }),
      "route login");
  HAWKER_TRY_STATUS(
      router.add("POST", "/api/admin/logout",
                 [this](const http::Request& r, http::ExchangePtr ex) { logout(r, ex); }),
      "route logout");
  HAWKER_TRY_STATUS(router.add("GET", "/api/admin/me",
                               [this](const http::Request& r, http::ExchangePtr ex) {
                                 require(
                                     r, ex,
                                     [ex](const Principal& p) {
                                       ex->respond(http::Response::json(
                                           200, {{"subject", p.subject},
                                                 {"role", p.role},
                                                 {"via", p.via_cookie ? "session" : "token"}}));
                                     },
                                     kRoleSupport);
                               }),
                    "route me");
  return ok_status();
}

void SellerAuth::login(const http::Request& request, const http::ExchangePtr& exchange) {
  std::string address = host_of(request.remote);
  int64_t now = clock_.wall_ms();
  if (int64_t wait = throttle_.retry_after_ms(address, now); wait > 0) {
    http::Response r = http::Response::problem(429, "too-many-attempts", "Too many attempts",
                                               "too many failed logins from this address");
    r.headers.set("Retry-After", std::to_string((wait + 999) / 1000));
    exchange->respond(std::move(r));
    return;
  }
  nlohmann::json body;
  if (auto bad = parse_json_object(request, body)) {
    exchange->respond(std::move(*bad));
    return;
  }
  std::string login = "admin";
  if (body.contains("login")) {
    if (!body["login"].is_string() || body["login"].get<std::string>().empty()) {
      exchange->respond(field_problem(422, "login", "must be a non-empty string"));
      return;
    }
    login = body["login"].get<std::string>();
  }
  if (!body.contains("password") || !body["password"].is_string()) {
    exchange->respond(field_problem(422, "password", "required string"));
    return;
  }
  std::string password = body["password"].get<std::string>();
  // scrypt runs on a reader thread: it takes ~100 ms of CPU that the loop must never spend.
  store_.read<bool>(
      [login, password](storage::Database& db) -> Result<bool> {
        auto hash = admin_password_hash(db, login);
        if (!hash) return unexpected(std::move(hash).error());
        bool ok = verify_password(password, hash->has_value() ? **hash : kDummyHash);
        return ok && hash->has_value();
      },
      [this, exchange, address, login](Result<bool> ok) {
        if (!ok) {
          exchange->respond(http::Response::problem(503, "storage-unavailable",
                                                    "Storage unavailable", ok.error().message));
          return;
        }
        int64_t now = clock_.wall_ms();
        if (!*ok) {
          throttle_.record_failure(address, now);
          exchange->respond(
              http::Response::problem(401, "bad-credentials", "Wrong login or password", ""));
          return;
        }
        throttle_.record_success(address);
        int64_t ttl = options_.session_ttl_ms;
        store_.write<IssuedSession>(
            [login, now, ttl](storage::Database& db) {
              return create_session(db, login, now, ttl);
            },
            [this, exchange, login](Result<IssuedSession> s) {
              if (!s) {
                exchange->respond(http::Response::problem(
                    503, "storage-unavailable", "Storage unavailable", s.error().message));
                return;
              }
              http::Response r =
                  http::Response::json(200, {{"login", login},
                                             {"csrf_token", s->csrf_token},
                                             {"expires_at", format_rfc3339(s->expires_at_ms)}});
              r.headers.set("Set-Cookie",
                            session_cookie(s->token.reveal(), options_.session_ttl_ms / 1000,
                                           options_.secure_cookies));
              r.headers.set("Cache-Control", "no-store");
              exchange->respond(std::move(r));
            });
      });
}

void SellerAuth::logout(const http::Request& request, const http::ExchangePtr& exchange) {
  require(
      request, exchange,
      [this, exchange, &request](const Principal& p) {
        auto token = cookie_value(request.header("Cookie").value_or(""), kSessionCookie);
        http::Response r = http::Response::empty(204);
        r.headers.set("Set-Cookie", session_cookie("", 0, options_.secure_cookies));
        if (!p.via_cookie || !token) {
          exchange->respond(std::move(r));
          return;
        }
        store_.write([t = *token](storage::Database& db) { return delete_session(db, t); },
                     [exchange, r](Status) mutable { exchange->respond(std::move(r)); });
      },
      kRoleSupport);
}

}  // namespace hawker::commerce
